#include "otsync/ot/error.hpp"

#include <string>

namespace otsync::ot {
namespace {

class ot_error_category final : public std::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "otsync.ot"; }

  [[nodiscard]] std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::op_not_array:
        return "Op must be an array of components";
      case errc::delete_not_number_or_string:
        return "Delete must be number or string";
      case errc::empty_delete:
        return "Deletes must not be empty";
      case errc::empty_insert:
        return "Inserts cannot be empty";
      case errc::non_positive_skip:
        return "Skip components must be >0";
      case errc::adjacent_skips:
        return "Adjacent skip components should be combined";
      case errc::trailing_skip:
        return "Op has a trailing skip";
      case errc::op_too_long:
        return "The op is too long for this document";
      case errc::not_invertible:
        return "Cannot invert text op: Deleted characters missing from operation. makeInvertible "
               "must be called first.";
      case errc::invalid_selection:
        return "Invalid selection";
      case errc::null_component:
        return "Op components must not be null";
      case errc::boolean_component:
        return "Op components must not be booleans";
      case errc::non_integer_length:
        return "Skip and delete lengths must be integers";
      case errc::length_out_of_range:
        return "Op lengths must be below 2^53";
      case errc::invalid_utf8:
        return "Op text must be valid UTF-8";
      case errc::lone_surrogate:
        return "Op text must not contain lone surrogates";
    }
    return "Unknown OT error";
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const ot_error_category category;
  return category;
}

}  // namespace otsync::ot
