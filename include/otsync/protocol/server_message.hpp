// The client side of ShareDB's wire protocol, shared by the client library
// (client_core) and the load generator: one decoder for the server's messages
// and the encoders of the client's frames.
//
// The decoder is a single-pass scanner: the op/ack hot path builds no DOM,
// reuses the message's strings from frame to frame, and reads an op straight
// into `ot::op`. It is bounded like `parse_json_bounded`: it never recurses
// (nested values it does not read are skipped, and validated, with an explicit
// depth-bounded stack), refuses
// nesting deeper than `default_max_json_depth` and ops of more than
// `default_max_json_values` components, and rejects malformed JSON, invalid
// UTF-8 and numbers that do not fit. Members of an unexpected type are
// treated as absent (as a DOM reader's `is_string()` checks would), except an
// op that the fast reader cannot take: it is kept as raw text (`op_raw`) for
// `op_from_json`, which gives the exact error.
//
// Thread safety: pure functions; a `server_message` belongs to one connection.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "otsync/ot/op.hpp"

namespace otsync::protocol {

enum class server_action : std::uint8_t { other, init, hs, s, f, op };

/// One server message. Reused from frame to frame so its strings keep their capacity.
struct server_message {
  server_action a = server_action::other;
  std::string c;
  std::string d;
  std::string src;
  std::string id;     ///< `hs`: the connection id
  std::string alias;  ///< `hs` from otsyncd: how others see this connection's src
  std::optional<std::uint64_t> v;
  std::optional<std::uint64_t> seq;

  bool has_op = false;
  bool op_read = false;     ///< `op` holds the op (unchecked); else `op_raw` is for `op_from_json`
  ot::op op;                ///< as sent: not yet `ot::check`ed
  std::string_view op_raw;  ///< the raw JSON of `op`, into the decoded text

  bool has_create = false;
  std::string create_data;  ///< the create's `data` when it is a string, else empty
  bool has_del = false;

  bool has_error = false;
  bool error_is_object = false;
  std::string error_code;     ///< the error object's string `code`, else empty
  std::string error_message;  ///< the error object's string `message`, else empty
  std::string_view error_raw;

  /// `data` of an `s`/`f` reply: a snapshot `{v, type, data}` when it is an object.
  bool has_snapshot = false;
  std::optional<std::uint64_t> snapshot_v;
  bool snapshot_has_type = false;  ///< `type` is a string (the document exists)
  std::string snapshot_type;
  std::string snapshot_data;  ///< `data` when it is a string, else empty

  /// The decoder's buffers, kept here for their capacity.
  std::string scratch_key;
  std::string scratch;
  std::string scratch_inner_key;

  void reset() noexcept;
};

/// Reads one text frame into `out`. False when it is not a JSON object, is
/// malformed, or exceeds the bounds above; `out` is then unspecified.
bool decode_server_message(std::string_view text, server_message& out);

/// The error as (code, message), as ShareDB's client reads it: a non-object
/// error, or one without a message, is its own (re-encoded) message.
std::pair<std::string, std::string> error_parts(const server_message& message);

// --- The client's frames, appended to a reused string (`out` is cleared first).

/// Which client writes the frames: the otsync client library (keys sorted,
/// `src` always, no `x`) or the sharedb npm client (`a,c,d,v,src,seq,x,op`
/// in that order, `src` only on a resend), which the load generator imitates.
enum class frame_style : std::uint8_t { otsync, sharedb_npm };

/// `{"a":"hs","id":ID|null,"protocol":1,"protocolMinor":2}`
void encode_handshake(std::string& out, std::string_view id);
/// `{"a":ACTION,"c":C,"d":D,"v":V|null}` for `s` and `f`.
void encode_doc_request(std::string& out, std::string_view action, std::string_view c, std::string_view d,
                        std::optional<std::uint64_t> v);
/// An edit. `resend` matters only to `sharedb_npm`, which sends `src` only then.
void encode_submit(std::string& out, frame_style style, std::string_view c, std::string_view d, std::uint64_t v,
                   std::uint64_t seq, std::string_view src, bool resend, const ot::op& operation);
/// The create of a text-unicode document with `data` at version `v`.
void encode_create(std::string& out, frame_style style, std::string_view c, std::string_view d, std::uint64_t v,
                   std::uint64_t seq, std::string_view src, std::string_view data);

inline constexpr std::string_view text_unicode_uri = "http://sharejs.org/types/text-unicode";

}  // namespace otsync::protocol
