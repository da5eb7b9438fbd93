#include "otsync/oplog/rebase.hpp"

#include "otsync/ot/text_unicode.hpp"

namespace otsync::oplog {
namespace {

/// Transforms `pending` past one committed op (ShareDB's ot.transform).
std::error_code transform_past(op_body& pending, const op_body& committed) {
  if (std::holds_alternative<delete_body>(committed)) {
    if (std::holds_alternative<delete_body>(pending)) return {};  // deleting twice is allowed
    return errc::doc_was_deleted;
  }
  if (std::holds_alternative<create_body>(committed)) return errc::doc_already_created;
  if (std::holds_alternative<create_body>(pending)) return errc::doc_already_created;
  if (auto* edit = std::get_if<ot::op>(&pending)) {
    auto moved = ot::transform(*edit, std::get<ot::op>(committed), ot::side::left);
    if (!moved) return moved.error();
    *edit = std::move(*moved);
  }
  return {};
}

}  // namespace

ot::result<rebase_status> rebase(submission& pending, std::span<const op_record> history, std::uint64_t head_version) {
  if (!pending.version) pending.version = head_version;  // a create made without a fetch
  std::uint64_t& version = *pending.version;
  if (version > head_version) return errc::version_from_the_future;
  if (history.size() < head_version - version) return errc::transform_ops_not_found;
  for (std::uint64_t i = 0, count = head_version - version; i < count; ++i) {
    const op_record& committed = history[i];
    if (!pending.src.empty() && committed.src == pending.src && committed.seq == pending.seq) {
      // A resend only if it is the same op: brought up to this version it
      // equals what was committed (the client transformed its op in flight
      // past the same ops, as the server did). Anything else under the same
      // (src, seq) would be a genuine edit silently acked and dropped.
      if (pending.body != committed.body) return errc::seq_reused;
      version = committed.version;
      return rebase_status::already_submitted;
    }
    if (committed.version != version) return errc::version_mismatch;
    if (auto error = transform_past(pending.body, committed.body)) return error;
    ++version;
  }
  return rebase_status::ready;
}

}  // namespace otsync::oplog
