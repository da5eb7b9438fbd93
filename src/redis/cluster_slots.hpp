// Redis Cluster routing, without I/O: which slot a key hashes to (CRC16 of
// the key, or of its `{hash tag}`), which master owns a slot (the map
// `CLUSTER SLOTS` describes), which key a command is routed by, and what a
// `MOVED`/`ASK` error redirects to. The client (client.cpp) does the I/O.
//
// Thread safety: pure functions; a slot_map is a value (one thread at a time).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct redisReply;

namespace otsync::redis {

/// host, port
using endpoint = std::pair<std::string, std::uint16_t>;

inline constexpr std::size_t cluster_slot_count = 16384;

/// The cluster slot of `key`: CRC16/XMODEM of the first non-empty `{...}` tag, else of the whole key.
std::uint16_t key_slot(std::string_view key);

/// The key a command is routed by: EVAL/EVALSHA their first key (none: no key), PUBLISH, SPUBLISH,
/// SSUBSCRIBE and the usual one-key commands their first argument; none for commands without a key
/// (SCRIPT, WAIT, PING, ROLE, CLUSTER, SUBSCRIBE...), which go to any master.
std::optional<std::string_view> routing_key(const std::vector<std::string>& argv);

/// A `MOVED <slot> <host>:<port>` or `ASK <slot> <host>:<port>` error reply.
struct redirect {
  bool ask = false;  ///< ASK: this one command, after ASKING, on the target; MOVED: the slot moved for good
  std::uint16_t slot = 0;
  endpoint to;
};
std::optional<redirect> parse_redirect(std::string_view error);

/// Which master owns each slot.
class slot_map {
 public:
  /// The map a `CLUSTER SLOTS` reply describes (masters only; a master with an empty host is at
  /// `fallback_host`, the address the question went to). Nullopt when the reply is not that shape.
  static std::optional<slot_map> from_cluster_slots(const redisReply* reply, const std::string& fallback_host);

  /// Slots `first`..`last` (inclusive) now belong to `master`.
  void assign(std::uint16_t first, std::uint16_t last, const endpoint& master);
  /// The owner of `slot`, or null when no master serves it.
  [[nodiscard]] const endpoint* owner(std::uint16_t slot) const;
  /// Every slot has an owner.
  [[nodiscard]] bool complete() const;
  /// The masters, each once, in order of their first slot.
  [[nodiscard]] std::vector<endpoint> masters() const;

 private:
  std::vector<endpoint> masters_;  ///< distinct owners
  /// Index into masters_ + 1 per slot (0: no owner).
  std::array<std::uint16_t, cluster_slot_count> owner_{};
};

}  // namespace otsync::redis
