// Where the client keeps what must survive a restart of the program: its
// connection id with the sequence numbers already used, and each document's
// replica (version, text, the op in flight and the edits not yet sent).
//
// Thread safety: none; the connection calls it under its lock.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "otsync/client/ot_client.hpp"

namespace otsync::client {

/// The connection id the server adopts again on reconnect (`hs.id`), and the
/// first sequence number not yet handed out under it.
struct client_identity {
  std::string src;
  std::uint64_t next_seq = 1;
};

class replica_journal {
 public:
  virtual ~replica_journal() = default;
  /// Throws std::runtime_error naming the file when it exists but cannot be read.
  virtual std::optional<client_identity> load_identity() = 0;
  virtual void save_identity(const client_identity& identity) = 0;
  /// Throws std::runtime_error naming the file when it exists but cannot be read.
  virtual std::optional<replica_state> load(const std::string& collection, const std::string& id) = 0;
  /// Durable once it returns; throws std::runtime_error on failure.
  virtual void save(const std::string& collection, const std::string& id, const replica_state& state) = 0;
};

}  // namespace otsync::client
