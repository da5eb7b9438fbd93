// Ops as the submit pipeline and the op log see them: a body (edit, create or
// delete) with the author's (src, seq) and a version.
//
// Thread safety: plain value types.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "otsync/ot/op.hpp"

namespace otsync::oplog {

/// `{create: {type, data}}`: brings a document into existence at version 0.
struct create_body {
  std::string type_uri;
  std::string data;
  friend bool operator==(const create_body&, const create_body&) = default;
};

/// `{del: true}`: deletes the document (its type becomes null).
struct delete_body {
  friend bool operator==(const delete_body&, const delete_body&) = default;
};

/// An edit, a create or a delete.
using op_body = std::variant<ot::op, create_body, delete_body>;

/// A committed op: the op log's unit. `version` is the version it applied to;
/// the document is at `version + 1` after it.
struct op_record {
  std::string src;
  std::uint64_t seq = 0;
  std::uint64_t version = 0;
  op_body body;
  /// When the server committed it (ms since the Unix epoch; ShareDB's `m.ts`).
  std::int64_t timestamp_ms = 0;
  /// Who wrote it: the subject of the author's bearer token (empty without one).
  std::string author{};
  friend bool operator==(const op_record&, const op_record&) = default;
};

/// An op a client submitted. `version` is null when a client creates a document
/// it never fetched.
struct submission {
  std::string src;
  std::uint64_t seq = 0;
  std::optional<std::uint64_t> version;
  op_body body;
  std::string author{};  ///< the submitter's token subject (empty without one)
};

}  // namespace otsync::oplog
