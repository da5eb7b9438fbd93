#include "otsync/protocol/json_parse.hpp"

namespace otsync::protocol {

using nlohmann::json;

bool json_nesting_exceeds(std::string_view text, std::size_t max_depth) noexcept {
  std::size_t depth = 0;
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
        break;
      case '[':
      case '{':
        if (++depth > max_depth) return true;
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      default:
        break;
    }
  }
  return false;
}

json parse_json_bounded(std::string_view text, std::size_t max_depth) {
  if (json_nesting_exceeds(text, max_depth)) return json(json::value_t::discarded);
  return json::parse(text, nullptr, /*allow_exceptions=*/false);
}

json parse_json_top_level(std::string_view text) {
  // nlohmann's parser keeps its own stack on the heap; nested values are
  // discarded as they start, so no deep tree is ever built.
  json value = json::parse(
      text,
      [](int depth, json::parse_event_t event, json&) {
        return depth == 0 || (event != json::parse_event_t::object_start && event != json::parse_event_t::array_start);
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
