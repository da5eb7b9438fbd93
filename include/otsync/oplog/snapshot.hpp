// A document at one version, as stored and as served to `f`/`s`/`nf`, and the
// pure step that moves it forward by committed ops.
//
// Thread safety: plain value types and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "otsync/oplog/op_record.hpp"
#include "otsync/ot/result.hpp"

namespace otsync::oplog {

/// Who created the document and at which version: lets a resent create with
/// `v: null` be recognised (ShareDB's `m._create`).
struct create_record {
  std::string src;
  std::uint64_t seq = 0;
  std::uint64_t version = 0;
  friend bool operator==(const create_record&, const create_record&) = default;
};

/// A document at `version` (the number of ops ever committed to it). A
/// document that never existed, or was deleted, has no type and empty data.
struct snapshot {
  std::uint64_t version = 0;
  std::optional<std::string> type_uri;  ///< nullopt: no type (missing or deleted)
  std::string data;                     ///< the text (UTF-8) when typed
  std::optional<create_record> created;
  friend bool operator==(const snapshot&, const snapshot&) = default;
};

/// Applies committed ops, oldest first, to `base`. Each op's version must equal
/// the snapshot's version when it is applied (else `version_mismatch`); edits
/// of an untyped document are `doc_does_not_exist`; a create of a typed one is
/// `doc_already_created`; OT errors keep their category. `base` is unchanged on
/// error.
ot::result<snapshot> replay(snapshot base, std::span<const op_record> ops);

}  // namespace otsync::oplog
