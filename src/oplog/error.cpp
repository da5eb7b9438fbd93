#include "otsync/oplog/error.hpp"

#include <string>

namespace otsync::oplog {
namespace {

class doc_error_category final : public std::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "otsync.doc"; }
  [[nodiscard]] std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::doc_was_deleted:
        return "Document was deleted";
      case errc::doc_already_created:
        return "Document already created";
      case errc::doc_does_not_exist:
        return "Document does not exist";
      case errc::version_from_the_future:
        return "Op version newer than current snapshot";
      case errc::transform_ops_not_found:
        return "Op submit failed. DB missing ops needed to transform it up to the current snapshot version";
      case errc::version_mismatch:
        return "Version mismatch";
      case errc::type_not_recognized:
        return "Type not recognized";
      case errc::seq_reused:
        return "Another op was already submitted with this src and seq";
    }
    return "Unknown document error";
  }
  // The op log's first seven codes are ShareDB's first seven conditions, one to one.
  [[nodiscard]] std::error_condition default_error_condition(int value) const noexcept override {
    if (static_cast<errc>(value) == errc::seq_reused) return sharedb_error::seq_reused;
    return {value, sharedb_error_category()};
  }
};

class sharedb_error_category_impl final : public std::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "otsync.sharedb"; }
  [[nodiscard]] std::string message(int value) const override {
    switch (static_cast<sharedb_error>(value)) {
      case sharedb_error::max_submit_retries_exceeded:
        return "Maximum submit retries exceeded";
      case sharedb_error::database_corrupt:
        return "Stored data does not decode";
      case sharedb_error::database_unavailable:
        return "The document store failed";
      case sharedb_error::shutting_down:
        return "The server is shutting down";
      case sharedb_error::seq_reused:
        return otsync::oplog::error_category().message(static_cast<int>(errc::seq_reused));
      default:
        return otsync::oplog::error_category().message(value);
    }
  }
};

}  // namespace

const std::error_category& sharedb_error_category() noexcept {
  static const sharedb_error_category_impl category;
  return category;
}

const std::error_category& error_category() noexcept {
  static const doc_error_category category;
  return category;
}

std::string_view sharedb_code(errc e) noexcept {
  switch (e) {
    case errc::doc_was_deleted:
      return "ERR_DOC_WAS_DELETED";
    case errc::doc_already_created:
      return "ERR_DOC_ALREADY_CREATED";
    case errc::doc_does_not_exist:
      return "ERR_DOC_DOES_NOT_EXIST";
    case errc::version_from_the_future:
      return "ERR_OP_VERSION_NEWER_THAN_CURRENT_SNAPSHOT";
    case errc::transform_ops_not_found:
      return "ERR_SUBMIT_TRANSFORM_OPS_NOT_FOUND";
    case errc::version_mismatch:
      return "ERR_OP_VERSION_MISMATCH_DURING_TRANSFORM";
    case errc::type_not_recognized:
      return "ERR_DOC_TYPE_NOT_RECOGNIZED";
    case errc::seq_reused:
      return "ERR_OP_SEQ_REUSED";
  }
  return "ERR_UNKNOWN_ERROR";
}

}  // namespace otsync::oplog
