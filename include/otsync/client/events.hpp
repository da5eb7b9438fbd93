// What the client library reports to the program: document changes and errors.
//
// Thread safety: plain value types.
#pragma once

#include <cstdint>
#include <string>

#include "otsync/ot/op.hpp"

namespace otsync::client {

enum class change_kind : std::uint8_t {
  edit,      ///< another client's op, transformed onto the local text
  created,   ///< the document came into existence (`op` is empty)
  deleted,   ///< the document was deleted; unsent local edits to it are dropped
  reloaded,  ///< the text was replaced by a fresh snapshot (first load, or after a rejected op)
};

/// One change to a replica's text that the program did not make itself.
struct change {
  change_kind kind = change_kind::edit;
  ot::op op;                  ///< for `edit`: the op as applied to the local text
  std::string src;            ///< the author's connection id (empty for `reloaded`)
  std::uint64_t version = 0;  ///< the document's version after the change
};

/// An error the server (or the offline queue) reported.
struct client_error {
  std::string collection;  ///< empty for connection-level errors
  std::string id;
  std::string code;  ///< ShareDB's code, e.g. ERR_OP_SUBMIT_REJECTED, or an OTSYNC_CLIENT_* code
  std::string message;
};

}  // namespace otsync::client
