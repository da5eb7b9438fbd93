#include <string>

#include "otsync/store/store.hpp"

namespace otsync::store {
namespace {

class store_error_category final : public std::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "otsync.store"; }
  [[nodiscard]] std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::version_conflict:
        return "Version conflict: the document was changed by another commit";
      case errc::unavailable:
        return "Store unavailable (I/O error, disk full or connection lost); retry later";
      case errc::closed:
        return "Store is closed";
      case errc::corrupt:
        return "Stored data is corrupt and cannot be decoded";
      case errc::invalid_argument:
        return "Invalid store request";
    }
    return "Unknown store error";
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const store_error_category category;
  return category;
}

}  // namespace otsync::store
