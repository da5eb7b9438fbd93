// What the client library reports to the program: document changes, other
// clients' presence (cursors and selections) and errors.
//
// Thread safety: plain value types.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "otsync/ot/op.hpp"
#include "otsync/ot/text_unicode.hpp"

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

/// Another client's presence on a document: its cursor or selection, moved
/// onto the local text (every op applied since it was sent, and the local
/// edits the server has not acknowledged yet).
struct remote_presence {
  std::string id;   ///< the presence id (one per document per connection of its owner)
  std::string src;  ///< its owner's connection as others see it: the `src` of its ops (`change::src`)
  /// Code points of the local text (`anchor == focus`: a caret; focus may precede anchor).
  /// Empty when the presence left, or when its value is not a `{index, length}` range.
  std::optional<ot::selection> selection;
  /// The rest of its value as JSON: the members besides `index` and `length` (`{"name":"Ada"}`;
  /// `{}` when none), or the whole value when it is not a range. Empty when it left.
  std::string data;
};

enum class presence_kind : std::uint8_t {
  joined,   ///< a presence not shown before
  updated,  ///< its owner set a new selection
  left,     ///< it is gone: `p: null` (its owner cleared it, closed, or dropped), the document was
            ///< deleted or reloaded, or our own connection dropped (presences come back after the reconnect)
};

/// A remote presence appeared, changed or left. Moves caused by edits are not
/// reported one by one: `document::remote_presences()` is always current.
struct presence_change {
  presence_kind kind = presence_kind::joined;
  remote_presence presence;  ///< as it is now (`selection` empty for `left`)
};

/// An error the server (or the offline queue) reported.
struct client_error {
  std::string collection;  ///< empty for connection-level errors
  std::string id;
  std::string code;  ///< ShareDB's code, e.g. ERR_OP_SUBMIT_REJECTED, or an OTSYNC_CLIENT_* code
  std::string message;
};

}  // namespace otsync::client
