#include <algorithm>

#include "otsync/ot/text_unicode.hpp"

namespace otsync::ot {

std::error_code apply(rope& doc, const op& operation) {
  if (auto error = detail::checked(operation)) return error;
  // Validate against the length first so a failing op leaves `doc` untouched.
  const std::uint64_t length = doc.size();
  std::uint64_t consumed = 0;  // code points of the old document walked over
  for (const component& c : operation) {
    if (c.is_skip()) {
      if (c.length() > length - consumed) return errc::op_too_long;
      consumed += c.length();
    } else if (c.is_erase()) {
      consumed += std::min(c.length(), length - consumed);  // cut short at the end, as JS
    }
  }
  std::uint64_t position = 0;  // in the new document
  for (const component& c : operation) {
    switch (c.kind()) {
      case component_kind::skip:
        position += c.length();
        break;
      case component_kind::insert:
        doc.insert(position, c.text(), c.length());
        position += c.length();
        break;
      case component_kind::erase:
        doc.erase(position, c.length());
        break;
    }
  }
  return {};
}

result<std::string> apply(std::string_view doc, const op& operation) {
  rope text(doc);
  if (auto error = apply(text, operation)) return error;
  return text.to_string();
}

}  // namespace otsync::ot
