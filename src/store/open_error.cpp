#include "otsync/store/open_error.hpp"

#include <string>

namespace otsync::store {
namespace {

class open_error_category_impl final : public std::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "otsync.store.open"; }
  [[nodiscard]] std::string message(int value) const override {
    switch (static_cast<open_errc>(value)) {
      case open_errc::cannot_open:
        return "Cannot open or create the store's database file";
      case open_errc::schema_too_new:
        return "The database schema is newer than this version of otsync supports; upgrade otsync";
      case open_errc::migration_failed:
        return "Upgrading the database schema failed; the database was left unchanged";
      case open_errc::invalid_option:
        return "Invalid store option";
      case open_errc::unknown_scheme:
        return "Unknown store URI scheme; use memory:, sqlite:PATH or redis://HOST:PORT[/DB]";
      case open_errc::redis_not_built:
        return "redis store not built";
    }
    return "Unknown store open error";
  }
};

}  // namespace

const std::error_category& open_error_category() noexcept {
  static const open_error_category_impl category;
  return category;
}

}  // namespace otsync::store
