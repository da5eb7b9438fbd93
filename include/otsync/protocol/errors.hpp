// Every ShareDB error object the server sends is made here: one mapping from
// `std::error_code` (through the `oplog::sharedb_error` conditions every
// otsync category maps onto) and the few errors that carry their own text.
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include "otsync/protocol/message.hpp"

namespace otsync::protocol {

/// The ShareDB error object for `error`: codes that map to an
/// `oplog::sharedb_error` condition get its ShareDB code (a store's failure
/// explained: "The document store failed: ..."); any other code is an OT error
/// (ERR_OT_OP_NOT_APPLIED with its message).
error_info to_error_info(std::error_code error);

/// The error object for a failed read of the past (a snapshot at a version
/// or time): past the head is ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT, a
/// store failure as `to_error_info`, and stored ops that do not replay are
/// ERR_DATABASE_CORRUPT.
error_info to_read_error_info(std::error_code error);

/// Errors with texts of their own (ShareDB's, where ShareDB has the case).
namespace errors {
error_info server_busy();                 ///< a document's queue is full
error_info memory_budget_exceeded();      ///< --max-open-document-bytes reached
error_info history_missing_for_read();    ///< the op log lacks ops a read asked for
error_info history_missing_for_submit();  ///< ... or ops a submission must be transformed against
error_info version_mismatch_after_transform();
error_info document_already_exists();  ///< a create of a live document
error_info document_too_large();       ///< --max-document-bytes
error_info version_beyond_head();      ///< a snapshot asked for past the head
error_info database_corrupt(std::string_view detail);
error_info src_not_owned();  ///< an op naming another connection's src
/// `what` ("read" or "write") of collection/id is not granted to this connection. Names no token or pattern.
error_info forbidden(std::string_view what, std::string_view collection, std::string_view id);
error_info rate_limited();                              ///< --max-request-rate
error_info create_rate_limited();                       ///< --max-create-rate
error_info subscription_limit(std::size_t subscribed);  ///< --max-subscriptions, one more asked
error_info subscription_limit(std::size_t subscribed, std::size_t more, std::size_t limit);  ///< ... a bulk asked
error_info subscribes_in_flight(std::string_view id,
                                std::size_t limit);  ///< that many subscriptions of one document at once
// Presence (docs/server.md, *Presence*).
error_info presence_too_old(std::uint64_t version, std::uint64_t oldest);  ///< ops since it are no longer cached
error_info presence_too_large(std::size_t bytes, std::size_t limit);       ///< --max-presence-bytes
error_info presence_limit(std::size_t limit);                              ///< --max-presences
error_info presence_channel_limit(std::size_t limit);                      ///< --max-presence-channels
error_info presence_server_channel_limit(std::size_t limit);               ///< --max-server-presence-channels
error_info presence_type_unsupported(std::string_view type);               ///< `t` is not text-unicode
error_info presence_channel_mismatch();                                    ///< `ch` is not `c + "." + d`
error_info stored_op_does_not_apply(std::uint64_t version, std::string_view collection, std::string_view id,
                                    std::string_view detail);
}  // namespace errors

}  // namespace otsync::protocol
