// Errors of the submit pipeline, named after the ShareDB codes clients get.
//
// Thread safety: all functions are pure.
#pragma once

#include <string_view>
#include <system_error>

namespace otsync::oplog {

/// Why a submitted op cannot be committed. Each maps to one ShareDB code
/// (`sharedb_code`); OT errors from transforming the op keep their own
/// category and reach clients as ShareDB reports type errors.
enum class errc {
  doc_was_deleted = 1,      ///< ERR_DOC_WAS_DELETED: the op was made before a delete
  doc_already_created,      ///< ERR_DOC_ALREADY_CREATED: create on a live document, or made before a create
  doc_does_not_exist,       ///< ERR_DOC_DOES_NOT_EXIST: edit of a document with no type
  version_from_the_future,  ///< ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT
  transform_ops_not_found,  ///< ERR_SUBMIT_TRANSFORM_OPS_NOT_FOUND: history missing
  version_mismatch,         ///< ERR_OP_VERSION_MISMATCH_DURING_TRANSFORM: history out of order
  type_not_recognized,      ///< ERR_DOC_TYPE_NOT_RECOGNIZED
  /// ERR_OP_SEQ_REUSED: the log holds another op under the submission's
  /// (src, seq), so it is neither a resend nor a new op (a client that
  /// numbered two ops alike); refused, never acked as already submitted.
  seq_reused,
};

const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

/// The ShareDB error code string for `e`.
std::string_view sharedb_code(errc e) noexcept;

/// The classes of failure a ShareDB client is told about, as error
/// conditions: every otsync error category (op log, store, ...) maps its
/// codes onto them (`default_error_condition`), and the protocol layer turns
/// a condition into one ShareDB error object (`protocol::to_error_info`).
/// Codes of categories that map to none are OT errors (ERR_OT_OP_NOT_APPLIED).
enum class sharedb_error {
  doc_was_deleted = 1,
  doc_already_created,
  doc_does_not_exist,
  version_from_the_future,
  transform_ops_not_found,
  version_mismatch,
  type_not_recognized,
  max_submit_retries_exceeded,  ///< a commit race lost too often
  database_corrupt,             ///< stored data does not decode
  database_unavailable,         ///< the store failed; retry later
  shutting_down,                ///< the store is closing with the server
  seq_reused,                   ///< errc::seq_reused
};

const std::error_category& sharedb_error_category() noexcept;

inline std::error_condition make_error_condition(sharedb_error e) noexcept {
  return {static_cast<int>(e), sharedb_error_category()};
}

}  // namespace otsync::oplog

template <>
struct std::is_error_code_enum<otsync::oplog::errc> : std::true_type {};
template <>
struct std::is_error_condition_enum<otsync::oplog::sharedb_error> : std::true_type {};
