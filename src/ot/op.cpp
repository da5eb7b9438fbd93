#include "otsync/ot/op.hpp"

#include "otsync/ot/error.hpp"
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

void op_builder::merge_into_last(const component_view& part) {
  component& last = op_.components_.back();
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
}

op op_builder::finish() && {
  if (!op_.empty() && op_.back().is_skip()) op_.components_.pop_back();
  op_.validated_ = false;
  return std::move(op_);
}

op op_builder::finish_validated() && {
  // Canonical by construction; only the total length could have grown too far.
  const bool within_limits = total_length_ <= max_length;
  op result = std::move(*this).finish();
  result.validated_ = within_limits;
  return result;
}

}  // namespace otsync::ot
