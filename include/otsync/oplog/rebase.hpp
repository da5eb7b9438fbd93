// The submit pipeline's transform step: bring a submitted op up to the
// document's current version by transforming it against every op committed
// since the version it was made at, spotting resends on the way.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <span>

#include "otsync/oplog/error.hpp"
#include "otsync/oplog/op_record.hpp"
#include "otsync/ot/result.hpp"

namespace otsync::oplog {

/// What `rebase` found.
enum class rebase_status : std::uint8_t {
  ready,              ///< `pending` now applies at the head version
  already_submitted,  ///< a resend: `pending.version` is the original commit's version
};

/// Transforms `pending` (an op made at `*pending.version`) against `history`,
/// the committed ops from that version on, oldest first, as ShareDB's
/// submit request does: the submission is the `left` side, one committed op
/// at a time (never a composed history); a committed op with the same
/// (src, seq) means `pending` is a resend. Creates and deletes follow
/// ShareDB's rules (an edit made before a delete is `doc_was_deleted`, anything
/// made before a create is `doc_already_created`; a delete survives anything
/// but a create). On success `pending.version` and `pending.body` are updated.
///
/// `history` must start at `*pending.version` and be contiguous; a short or
/// out-of-order history is an error, never a silent skip.
ot::result<rebase_status> rebase(submission& pending, std::span<const op_record> history, std::uint64_t head_version);

}  // namespace otsync::oplog
