#include "otsync/ot/text_unicode.hpp"

namespace otsync::ot {

bool is_invertible(const op& operation) noexcept {
  for (const component& c : operation) {
    if (c.is_erase() && !c.has_text()) return false;
  }
  return true;
}

op make_invertible(const op& operation, const rope& doc) {
  op_builder out(operation.size());
  std::uint64_t position = 0;  // in the old document
  for (const component& c : operation) {
    if (c.is_erase() && !c.has_text()) {
      // Past the end this records less (or nothing, dropping the delete), as JS.
      out.erase_text(doc.substr(position, c.length()));
    } else {
      out.append(c);
    }
    if (!c.is_insert()) position += c.length();
  }
  return std::move(out).finish();
}

result<op> invert(const op& operation) {
  op_builder out(operation.size());
  for (const component& c : operation) {
    switch (c.kind()) {
      case component_kind::skip:
        out.skip(c.length());
        break;
      case component_kind::insert:
        out.erase_text(c.text(), c.length());
        break;
      case component_kind::erase:
        if (!c.has_text()) return errc::not_invertible;
        out.insert(c.text(), c.length());
        break;
    }
  }
  return std::move(out).finish();
}

op strip_invertible(const op& operation) {
  op_builder out(operation.size());
  for (const component& c : operation) {
    if (c.is_erase()) {
      out.erase(c.length());
    } else {
      out.append(c);
    }
  }
  return std::move(out).finish();
}

}  // namespace otsync::ot
