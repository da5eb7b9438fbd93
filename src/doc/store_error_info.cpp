#include "otsync/doc/store_error_info.hpp"

#include "otsync/store/store.hpp"

namespace otsync::doc {

protocol::error_info store_error_info(std::error_code error) {
  if (error == store::errc::version_conflict) {
    return {"ERR_MAX_SUBMIT_RETRIES_EXCEEDED", "Maximum submit retries exceeded"};
  }
  if (error == store::errc::corrupt) {
    return {"ERR_DATABASE_CORRUPT", "Stored data does not decode: " + error.message()};
  }
  if (error == store::errc::closed) {
    return {"ERR_DATABASE_UNAVAILABLE", "The server is shutting down"};
  }
  return {"ERR_DATABASE_UNAVAILABLE", "The document store failed: " + error.message()};
}

}  // namespace otsync::doc
