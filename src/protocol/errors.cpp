#include "otsync/protocol/errors.hpp"

#include "otsync/oplog/error.hpp"

namespace otsync::protocol {

error_info to_error_info(std::error_code error) {
  using oplog::sharedb_error;
  const auto condition = error.default_error_condition();
  if (condition.category() != oplog::sharedb_error_category()) {
    // OT errors: the op cannot be applied (ShareDB: ERR_OT_OP_NOT_APPLIED with the type's message).
    return {"ERR_OT_OP_NOT_APPLIED", error.message()};
  }
  switch (static_cast<sharedb_error>(condition.value())) {
    case sharedb_error::max_submit_retries_exceeded:
      return {"ERR_MAX_SUBMIT_RETRIES_EXCEEDED", "Maximum submit retries exceeded"};
    case sharedb_error::database_corrupt:
      return {"ERR_DATABASE_CORRUPT", "Stored data does not decode: " + error.message()};
    case sharedb_error::shutting_down:
      return {"ERR_DATABASE_UNAVAILABLE", "The server is shutting down"};
    case sharedb_error::database_unavailable:
      return {"ERR_DATABASE_UNAVAILABLE", "The document store failed: " + error.message()};
    case sharedb_error::seq_reused:
      return {"ERR_OP_SEQ_REUSED", "Another op was already submitted with this src and seq; not applied"};
    default:
      return {std::string(oplog::sharedb_code(static_cast<oplog::errc>(condition.value()))), error.message()};
  }
}

error_info to_read_error_info(std::error_code error) {
  if (error == oplog::errc::version_from_the_future) return errors::version_beyond_head();
  const auto condition = error.default_error_condition();
  if (condition == oplog::sharedb_error::database_unavailable || condition == oplog::sharedb_error::shutting_down ||
      condition == oplog::sharedb_error::database_corrupt ||
      condition == oplog::sharedb_error::max_submit_retries_exceeded) {
    return to_error_info(error);
  }
  return errors::database_corrupt(error.message());
}

namespace errors {

error_info src_not_owned() {
  return {"ERR_SRC_NOT_OWNED", "Op src must be this connection's own id (the handshake's)"};
}
error_info forbidden(std::string_view what, std::string_view collection, std::string_view id) {
  std::string message = "Not allowed to ";
  message.append(what).append(" ").append(collection).append("/").append(id);
  return {"ERR_FORBIDDEN", std::move(message)};
}
error_info rate_limited() {
  return {"ERR_RATE_LIMITED", "Too many messages on this connection; slow down"};
}
error_info create_rate_limited() {
  return {"ERR_CREATE_RATE_LIMITED", "Too many documents created on this connection; retry later"};
}
error_info presence_too_old(std::uint64_t version, std::uint64_t oldest) {
  return {"ERR_PRESENCE_TRANSFORM_FAILED", "Presence at version " + std::to_string(version) +
                                               " is too old to move to the document's head (oldest kept: " +
                                               std::to_string(oldest) + "); send it again"};
}
error_info presence_too_large(std::size_t bytes, std::size_t limit) {
  return {"ERR_PRESENCE_TOO_LARGE",
          "Presence value of " + std::to_string(bytes) + " bytes; the limit is " + std::to_string(limit)};
}
error_info presence_limit(std::size_t limit) {
  return {"ERR_PRESENCE_LIMIT_EXCEEDED",
          "This connection already sends " + std::to_string(limit) + " presences, the limit; destroy some first"};
}
error_info presence_channel_limit(std::size_t limit) {
  return {"ERR_PRESENCE_LIMIT_EXCEEDED", "This connection already subscribes to " + std::to_string(limit) +
                                             " presence channels, the limit; unsubscribe from some first"};
}
error_info presence_server_channel_limit(std::size_t limit) {
  return {"ERR_PRESENCE_LIMIT_EXCEEDED", "This server already has " + std::to_string(limit) +
                                             " presence channels with subscribers, the limit; try again later"};
}
error_info presence_type_unsupported(std::string_view type) {
  return {"ERR_TYPE_DOES_NOT_SUPPORT_PRESENCE", "Type does not support presence: " + std::string(type)};
}
error_info presence_channel_mismatch() {
  return {"ERR_MESSAGE_BADLY_FORMED", "Invalid presence channel: a document's presence channel is c + \".\" + d"};
}
error_info subscription_limit(std::size_t subscribed) {
  return {"ERR_SUBSCRIPTION_LIMIT_EXCEEDED", "This connection subscribes to " + std::to_string(subscribed) +
                                                 " documents, the limit; unsubscribe from some first"};
}
error_info subscription_limit(std::size_t subscribed, std::size_t more, std::size_t limit) {
  return {"ERR_SUBSCRIPTION_LIMIT_EXCEEDED", "This connection subscribes to " + std::to_string(subscribed) +
                                                 " documents; " + std::to_string(more) +
                                                 " more would pass the limit of " + std::to_string(limit)};
}

error_info subscribes_in_flight(std::string_view id, std::size_t limit) {
  return {"ERR_SUBSCRIPTION_LIMIT_EXCEEDED", "This connection has " + std::to_string(limit) + " subscriptions of '" +
                                                 std::string(id) +
                                                 "' at once (the limit): wait for the replies to the last ones"};
}

error_info server_busy() {
  return {"ERR_SERVER_BUSY", "Too many requests queued for this document; retry later"};
}
error_info memory_budget_exceeded() {
  return {"ERR_MEMORY_BUDGET_EXCEEDED", "The server holds as many documents in memory as it may; retry in a moment"};
}
error_info history_missing_for_read() {
  return {"ERR_SUBMIT_TRANSFORM_OPS_NOT_FOUND", "Missing operations in the op log"};
}
error_info history_missing_for_submit() {
  return {"ERR_SUBMIT_TRANSFORM_OPS_NOT_FOUND", "The op log lacks the ops this op must be transformed against"};
}
error_info version_mismatch_after_transform() {
  return {"ERR_OP_VERSION_MISMATCH_AFTER_TRANSFORM", "Version mismatch"};
}
error_info document_already_exists() {
  return {"ERR_DOC_ALREADY_CREATED", "Document already exists"};
}
error_info document_too_large() {
  return {"ERR_OT_OP_NOT_APPLIED", "Document would exceed the size limit"};
}
error_info version_beyond_head() {
  return {"ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT", "Requested version exceeds latest snapshot version"};
}
error_info database_corrupt(std::string_view detail) {
  return {"ERR_DATABASE_CORRUPT", std::string(detail)};
}
error_info stored_op_does_not_apply(std::uint64_t version, std::string_view collection, std::string_view id,
                                    std::string_view detail) {
  return database_corrupt("Stored op " + std::to_string(version) + " of " + std::string(collection) + "/" +
                          std::string(id) + " does not apply: " + std::string(detail));
}

}  // namespace errors
}  // namespace otsync::protocol
