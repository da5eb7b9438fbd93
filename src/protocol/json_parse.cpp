#include "otsync/protocol/json_parse.hpp"

namespace otsync::protocol {

using nlohmann::json;

json_shape scan_json_shape(std::string_view text, std::size_t max_depth, std::size_t max_values) noexcept {
  json_shape shape;
  std::size_t depth = 0;
  std::size_t values = 1;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character cannot end the string
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        continue;
      case '[':
      case '{':
        if (++depth > max_depth) {
          shape.too_deep = true;
          return shape;
        }
        values += 2;
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        continue;
      case ',':
        ++values;
        break;
      default:
        continue;
    }
    if (values > max_values) {
      shape.too_many_values = true;
      return shape;
    }
  }
  return shape;
}

json parse_json_bounded(std::string_view text, std::size_t max_depth, std::size_t max_values) {
  auto shape = scan_json_shape(text, max_depth, max_values);
  if (shape.too_deep || shape.too_many_values) return json(json::value_t::discarded);
  return json::parse(text, nullptr, /*allow_exceptions=*/false);
}

json parse_json_top_level(std::string_view text, const std::function<bool(std::string_view)>& keep) {
  // nlohmann's parser keeps its own stack on the heap; nested values and
  // unwanted members are discarded as they are read, so nothing large or deep
  // is ever built.
  json value = json::parse(
      text,
      [&keep](int depth, json::parse_event_t event, json& parsed) {
        if (depth == 0) return true;
        if (event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) return false;
        if (depth == 1 && event == json::parse_event_t::key) return keep(parsed.get_ref<const std::string&>());
        return true;
      },
      /*allow_exceptions=*/false);
  if (!value.is_object()) return json(json::value_t::discarded);
  for (auto it = value.begin(); it != value.end();) {
    if (it->is_structured() || it->is_discarded()) {
      it = value.erase(it);
    } else {
      ++it;
    }
  }
  return value;
}

}  // namespace otsync::protocol
