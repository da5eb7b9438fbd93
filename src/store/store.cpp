#include "otsync/store/store.hpp"

#include <utility>

namespace otsync::store {

// Stores without atomic batches: one request is an ordinary commit.
void store::commit_all(std::vector<commit_request> requests, commit_handler done) {
  if (requests.size() != 1) return done(make_error_code(errc::invalid_argument));
  commit(std::move(requests.front()), std::move(done));
}

}  // namespace otsync::store
