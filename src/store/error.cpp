#include <string>

#include "otsync/oplog/error.hpp"
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
  // What a client is told (protocol::to_error_info): a race lost beyond the
  // retry limit, corrupt data, a store closing, or a store failing.
  [[nodiscard]] std::error_condition default_error_condition(int value) const noexcept override {
    switch (static_cast<errc>(value)) {
      case errc::version_conflict:
        return oplog::sharedb_error::max_submit_retries_exceeded;
      case errc::corrupt:
        return oplog::sharedb_error::database_corrupt;
      case errc::closed:
        return oplog::sharedb_error::shutting_down;
      case errc::unavailable:
      case errc::invalid_argument:
        break;
    }
    return oplog::sharedb_error::database_unavailable;
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const store_error_category category;
  return category;
}

}  // namespace otsync::store
