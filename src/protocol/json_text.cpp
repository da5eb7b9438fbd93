#include "otsync/protocol/json_text.hpp"

#include <charconv>

#include <nlohmann/json.hpp>

#include "otsync/ot/unicode.hpp"

namespace otsync::protocol::json_text {

void append_string(std::string& out, std::string_view value) {
  std::size_t code_points = 0;
  if (ot::unicode::validate_utf8(value, code_points) != ot::unicode::utf8_status::valid) {
    out += nlohmann::json(std::string(value)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return;
  }
  out.push_back('"');
  std::size_t run = 0;  // start of the bytes not yet copied
  for (std::size_t i = 0; i < value.size(); ++i) {
    auto c = static_cast<unsigned char>(value[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(value.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\r':
        out += "\\r";
        break;
      default: {
        static constexpr char hex[] = "0123456789abcdef";
        char escape[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};
        out.append(escape, sizeof escape);
      }
    }
  }
  out.append(value.data() + run, value.size() - run);
  out.push_back('"');
}

void append_uint(std::string& out, std::uint64_t value) {
  char digits[20];
  auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
  out.append(digits, end);
}

void append_op(std::string& out, const ot::op& operation) {
  out.push_back('[');
  bool first = true;
  for (const auto& c : operation) {
    if (!first) out.push_back(',');
    first = false;
    switch (c.kind()) {
      case ot::component_kind::skip:
        append_uint(out, c.length());
        break;
      case ot::component_kind::insert:
        append_string(out, c.text());
        break;
      case ot::component_kind::erase:
        out += "{\"d\":";
        if (c.has_text()) {
          append_string(out, c.text());
        } else {
          append_uint(out, c.length());
        }
        out.push_back('}');
        break;
    }
  }
  out.push_back(']');
}

}  // namespace otsync::protocol::json_text
