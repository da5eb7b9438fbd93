// The error a client gets when the document store fails a request.
//
// Thread safety: pure.
#pragma once

#include <system_error>

#include "otsync/protocol/message.hpp"

namespace otsync::doc {

/// Maps a store error (`store::errc`) to a ShareDB-style error object:
/// a lost race beyond the retry limit is ERR_MAX_SUBMIT_RETRIES_EXCEEDED,
/// undecodable stored data ERR_DATABASE_CORRUPT, anything else
/// ERR_DATABASE_UNAVAILABLE (retry later).
protocol::error_info store_error_info(std::error_code error);

}  // namespace otsync::doc
