// The ShareDB wire protocol's messages (protocol 1.2, text-unicode documents):
// reading a client frame into a validated request, and writing replies,
// op messages and error replies. Sans-I/O.
//
// Validation follows ShareDB 7's agent: the same checks, codes and messages,
// so a client sees the error ShareDB would give (see docs/errors.md).
//
// Thread safety: all functions are pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "otsync/ot/text_unicode.hpp"

#include "otsync/oplog/op_record.hpp"
#include "otsync/oplog/snapshot.hpp"

namespace otsync::protocol {

/// The handshake type clients expect (json0), whatever the documents' type.
inline constexpr std::string_view default_type_uri = "http://sharejs.org/types/JSONv0";
inline constexpr int protocol_major = 1;
inline constexpr int protocol_minor = 2;

/// What one client message may hold; larger requests are refused with an error
/// reply before any work is done for them (see docs/server.md, *Limits*).
struct message_limits {
  std::size_t max_depth = 64;             ///< nesting of arrays/objects: ERR_MESSAGE_BADLY_FORMED, no tree built
  std::size_t max_values = 100000;        ///< values in one message: ERR_MESSAGE_BADLY_FORMED, no tree built
  std::size_t max_id_bytes = 256;         ///< collection and document ids (UTF-8 bytes): ERR_MESSAGE_BADLY_FORMED
  std::size_t max_bulk_ids = 1000;        ///< documents named by one bf/bs/bu: ERR_BULK_LIMIT_EXCEEDED
  std::size_t max_op_components = 10000;  ///< components of one op: ERR_OP_TOO_LARGE
  std::size_t max_op_bytes = 8u << 20;    ///< text one op inserts or deletes, or a create's data: ERR_OP_TOO_LARGE
};

/// A ShareDB error object: `{code, message}`.
struct error_info {
  std::string code;
  std::string message;
  friend bool operator==(const error_info&, const error_info&) = default;
};

/// `hs`: `id` is the previous connection id on reconnect.
struct handshake_request {
  std::optional<std::string> id;
};

/// `f`, `s`, `u` for one document. `version` null: send a snapshot;
/// a number: send the ops from it on.
struct doc_request {
  std::string collection;
  std::string id;
  std::optional<std::uint64_t> version;
};

/// `bf`, `bs`, `bu`: the array form (`ids`) or the map form (`versions`).
/// A document named twice is kept once (the first time).
struct bulk_request {
  std::string collection;
  std::vector<std::string> ids;
  std::vector<std::pair<std::string, std::uint64_t>> versions;
  bool map_form = false;
};

/// `op`: a create, edit or delete. `src` is set only on resends; the
/// connection's src applies otherwise.
struct submit_request {
  std::string collection;
  std::string id;
  std::optional<std::uint64_t> version;
  std::optional<std::string> src;
  std::uint64_t seq = 0;
  oplog::op_body body;
};

/// `nf` (by version; null = latest) and `nt` (by timestamp; null = latest).
struct snapshot_request {
  std::string collection;
  std::string id;
  std::optional<std::uint64_t> version;
  std::optional<std::int64_t> timestamp_ms;
  bool by_timestamp = false;
};

/// `pp`.
struct ping_request {};

/// `qu`: acknowledged; ShareDB's client ignores the reply.
struct query_unsubscribe_request {};

/// A valid message of a feature otsync does not offer yet (queries): answered with this error.
struct unsupported_request {
  error_info error;
};

/// `ps` (subscribe) and `pu` (unsubscribe) to a presence channel; `seq` is the
/// connection's presence sequence number, echoed in the reply.
struct presence_subscribe_request {
  std::string channel;
  std::uint64_t seq = 0;
  bool subscribe = true;
};

/// `pr`: ask the channel's other members to send their presence again.
struct presence_resend_request {
  std::string channel;
};

/// `p`: a presence value on a channel, under the sender's presence `id`.
/// Doc presence also names the document (`c`, `d`), its version `v` and type `t`.
struct presence_update_request {
  std::string channel;
  std::string id;
  std::optional<std::uint64_t> pv;
  nlohmann::json value;  ///< `p`: null removes the presence
  std::optional<std::string> collection;
  std::optional<std::string> doc_id;
  std::optional<std::uint64_t> version;
  std::optional<std::string> type;
};

using request_body = std::variant<handshake_request, doc_request, bulk_request, submit_request, snapshot_request,
                                  ping_request, query_unsubscribe_request, unsupported_request,
                                  presence_subscribe_request, presence_resend_request, presence_update_request>;

/// A parsed client message: its action, the fields an error reply echoes
/// (`echo_fields`) and the validated fields.
struct request {
  std::string action;
  nlohmann::json echo;
  request_body body;
};

/// A message that is well-formed JSON but fails validation: the reply is the
/// request's echoed fields with `error` (ShareDB's convention).
struct rejected_request {
  nlohmann::json echo;
  error_info error;
};

/// A frame that is not a JSON object: ShareDB closes the connection.
struct unreadable_frame {
  error_info error;
};

using parse_result = std::variant<request, rejected_request, unreadable_frame>;

/// Reads and validates one text frame. Never throws, never recurses on the
/// frame's nesting.
parse_result parse_request(std::string_view frame, const message_limits& limits = {});

/// The members of a request a ShareDB client reads in a reply to it: `a`,
/// `c`, `d`, `v`, `src`, `seq`, `id`, `ch`, `pv` when they are scalars, and
/// a bulk request's `b` when it is a scalar or a flat array or object of at most
/// `max_bulk_ids` members. Never the op or create data (they can be
/// megabytes), never anything nested (replies are shallow by construction).
nlohmann::json echo_fields(const nlohmann::json& message, std::size_t max_bulk_ids);

/// `{"a":"op","c","d","v","src","seq", op|create|del}`: broadcasts, ops
/// sent before an ack, and ops for versioned fetch/subscribe.
std::string encode_op_message(std::string_view collection, std::string_view id, const oplog::op_record& record,
                              std::string_view shown_src);

/// A document as fetch/subscribe send it: `{v, data, type}` with `type` the
/// URI or null (never absent: absent means json0 to the client).
nlohmann::json snapshot_json(const oplog::snapshot& snap);

/// `snapshot_json(snap)` appended as text, byte for byte as nlohmann writes it,
/// without a DOM (no copy of the document's text beyond the output).
void append_snapshot_json(std::string& out, const oplog::snapshot& snap);

/// The reply to `f`/`s`: `{"a","c","d"}` and, with a snapshot, `data` as
/// `snapshot_json` gives it; byte for byte as nlohmann would write it, without
/// a DOM (a snapshot can be a 64 MiB document: no extra copies).
std::string encode_doc_reply(std::string_view action, std::string_view collection, std::string_view id,
                             const oplog::snapshot* snap);

/// The submitter's ack: `{"src","seq","v","a":"op","c","d"}`.
std::string encode_ack(std::string_view collection, std::string_view id, std::string_view src, std::uint64_t seq,
                       std::uint64_t version);

/// An error reply: `echo` (from `echo_fields`) with `error: {code, message}` added.
std::string encode_error_reply(nlohmann::json echo, const error_info& error);

/// An error with nothing to echo (a frame that is not a JSON object): `{error: {code, message}}`.
std::string encode_bare_error(const error_info& error);
/// `error_info` as the `{code, message}` object a bulk reply holds for one document, appended to `out`.
void append_error_object(std::string& out, const error_info& error);

/// The handshake reply: protocol version, the connection's `src` and the default type.
std::string encode_handshake(std::string_view src, std::string_view alias = {});
/// The range of a text-unicode presence value `{index, length, ...}` (code points; `length`
/// negative: the selection extends backwards, clamped at 0) as a selection from `index`;
/// nullopt for any other value (null, a string, no integer `index`): such values travel as they
/// are. The rule of clients/js (`transformPresence`): integers within 2^53.
std::optional<ot::selection> presence_selection(const nlohmann::json& value);
/// Writes `range` into the presence `value` (`index`, `length`), leaving its other members.
void set_presence_selection(nlohmann::json& value, const ot::selection& range);

/// A presence as every member of its channel receives it (and its sender, as the ack):
/// `{"a":"p","ch","src","id","p","pv"}` and, for doc presence, `c`, `d`, `v`, `t`.
std::string encode_presence(const presence_update_request& presence, std::string_view shown_src);
/// The reply to `ps`/`pu`: `{"a","ch","seq"}`.
std::string encode_presence_subscribed(std::string_view action, std::string_view channel, std::uint64_t seq);
/// `{"a":"pr","ch"}`: asks a channel's members to send their presence again.
std::string encode_presence_resend(std::string_view channel);
/// The reply to the client's own `pr`: `{"a":"pr"}` (as ShareDB's).
std::string encode_presence_resend_reply();
/// The reply to `pp` (ping).
std::string encode_pong();
/// The reply to `qu` (a query unsubscribe): `{"a":"qu"}` with the request's `id` when it had one.
std::string encode_query_unsubscribe(const nlohmann::json& echo);
/// A snapshot reply (`nf`/`nt`): `snapshot_json(snap)` with the request's `a` and `id`, and `m: null`.
std::string encode_snapshot_reply(const nlohmann::json& echo, const oplog::snapshot& snap);

/// The end of a bulk `bf`/`bs`/`bu` in the map form: `{"a","b","c"}` with the request's `b`.
std::string encode_bulk_done(std::string_view action, const nlohmann::json& echo, std::string_view collection);
/// One page of a bulk reply in the array form: `{"a","c","data":{<members>}}`, where `members` is
/// `"id":snapshot` or `"id":{error}` pairs, comma-separated, as the agent gathered them.
std::string encode_bulk_page(std::string_view action, std::string_view collection, std::string_view members);

/// The op body in the wire form: `{"op": [...]}`, `{"create": {...}}` or `{"del": true}`.
void write_op_body(nlohmann::json& message, const oplog::op_body& body);

/// Reads an op body in the wire form (as stored in op logs); the OT op is
/// checked. Error: the ShareDB code and message for the body.
std::variant<oplog::op_body, error_info> read_op_body(const nlohmann::json& message);

}  // namespace otsync::protocol
