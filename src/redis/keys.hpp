// Where a document lives in Redis, shared by the store (keys, the commit
// script's PUBLISH) and the op feed (SUBSCRIBE): one hash tag per document,
// so all its keys share a cluster slot, and the channel its ops go out on.
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace otsync::redis {

/// `{len:collection/id}`, with `%`, `{` and `}` escaped.
std::string doc_tag(std::string_view collection, std::string_view id);
/// `PREFIXops:{tag}`: the channel the commit script publishes the document's ops on.
std::string op_channel(std::string_view key_prefix, std::string_view collection, std::string_view id);
/// `i:<instance_id>\n`, prepended to every op an instance publishes ("" without an id).
std::string publisher_tag(std::string_view instance_id);

/// The pub/sub channel that carries a presence channel between instances.
std::string presence_channel(std::string_view key_prefix, std::string_view channel);
/// The pub/sub channel of the instances' presence heartbeats and goodbyes.
std::string presence_instances_channel(std::string_view key_prefix);

}  // namespace otsync::redis
