// Argument checks every backend applies the same way, so that the conformance
// suite sees one behaviour.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <system_error>
#include <vector>

#include "otsync/store/store.hpp"

namespace otsync::store::detail {

inline bool valid_key(const doc_key& key) noexcept {
  return !key.collection.empty() && !key.id.empty();
}

/// `invalid_argument` for a request no backend should store: no address, or
/// an `after` snapshot that is not one version past the op.
inline std::error_code check_commit(const commit_request& request) noexcept {
  if (!valid_key(request.key)) return errc::invalid_argument;
  if (request.op.version == UINT64_MAX || request.after.version != request.op.version + 1) {
    return errc::invalid_argument;
  }
  return {};
}

/// `check_commit` for each, plus: one document, consecutive versions.
inline std::error_code check_commit_all(const std::vector<commit_request>& requests) noexcept {
  if (requests.empty()) return errc::invalid_argument;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    if (auto e = check_commit(requests[i])) return e;
    if (!(requests[i].key == requests[0].key) || requests[i].op.version != requests[0].op.version + i) {
      return errc::invalid_argument;
    }
  }
  return {};
}

inline std::error_code check_range(const doc_key& key, std::uint64_t from, std::optional<std::uint64_t> to) noexcept {
  if (!valid_key(key)) return errc::invalid_argument;
  if (to && from > *to) return errc::invalid_argument;
  return {};
}

}  // namespace otsync::store::detail
