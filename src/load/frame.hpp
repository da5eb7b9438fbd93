// ShareDB frames as the load generator needs them: a small scanner for the
// server's messages (the op/ack hot path reads no DOM; snapshot and error
// objects are handed over as raw JSON) and builders that append outgoing
// frames to a reused string.
//
// Thread safety: pure functions; a `frame` belongs to one connection.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "otsync/ot/op.hpp"

namespace otsync::load {

enum class action : std::uint8_t { other, hs, s, f, op, init };

/// One server message. Reused from frame to frame so its strings keep their capacity.
struct frame {
  action a = action::other;
  std::string c;
  std::string d;
  std::string src;
  std::string id;  ///< `hs`: the connection id
  std::optional<std::uint64_t> v;
  std::optional<std::uint64_t> seq;
  bool has_op = false;
  ot::op op;
  bool has_create = false;
  bool has_del = false;
  bool has_error = false;
  std::string error_code;     ///< empty when the error object has no code
  std::string_view data_raw;  ///< the raw JSON of `data` (a snapshot), into the parsed text
  std::string_view create_raw;

  void reset() noexcept;
};

/// Reads one text frame. False when it is not a JSON object this scanner understands.
bool parse_frame(std::string_view text, frame& out);

/// A snapshot `{v, data, type}` from `data_raw`.
struct snapshot {
  std::uint64_t v = 0;
  bool has_type = false;
  std::string data;
};
bool parse_snapshot(std::string_view raw, snapshot& out);
/// The initial text of a create body `{type, data}` from `create_raw`.
bool parse_create_data(std::string_view raw, std::string& data);

/// `{"a":"hs","id":null,"protocol":1,"protocolMinor":2}`
std::string_view handshake_frame();
/// `{"a":ACTION,"c":C,"d":D,"v":V|null}` for `s` and `f`.
void build_doc_request(std::string& out, std::string_view act, std::string_view c, std::string_view d,
                       std::optional<std::uint64_t> v);
/// An edit, as sharedb's client sends it (`src` only on a resend).
void build_submit(std::string& out, std::string_view c, std::string_view d, std::uint64_t v, std::uint64_t seq,
                  const std::string* src, const ot::op& operation);
/// The create of an empty text-unicode document at version 0.
void build_create(std::string& out, std::string_view c, std::string_view d, std::uint64_t seq);

}  // namespace otsync::load
