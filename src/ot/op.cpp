#include "otsync/ot/op.hpp"

#include "otsync/ot/unicode.hpp"

namespace otsync::ot {

component component::insert(std::string text) {
  const auto length = unicode::count_code_points(text);
  return insert(std::move(text), length);
}

component component::erase(std::string text) {
  const auto length = unicode::count_code_points(text);
  return erase(std::move(text), length);
}

op_builder& op_builder::insert(std::string_view text) {
  return insert(text, unicode::count_code_points(text));
}

op_builder& op_builder::erase_text(std::string_view text) {
  return erase_text(text, unicode::count_code_points(text));
}

op_builder& op_builder::append(const component_view& part) {
  if (part.length == 0) return *this;  // a no-op component
  if (op_.empty() || op_.back().kind() != part.kind) {
    op_.push_back(component::from_view(part));
    return *this;
  }
  component& last = op_.back();
  last.length_ += part.length;
  switch (part.kind) {
    case component_kind::skip:
      break;
    case component_kind::insert:
      last.text_.append(part.text);
      break;
    case component_kind::erase:
      if (last.has_text_ && part.has_text) {
        last.text_.append(part.text);
      } else {
        // Mixing the two delete forms drops the recorded text, as ot-text-unicode does.
        last.text_.clear();
        last.has_text_ = false;
      }
      break;
  }
  return *this;
}

op op_builder::finish() && {
  if (!op_.empty() && op_.back().is_skip()) op_.pop_back();
  return std::move(op_);
}

}  // namespace otsync::ot
