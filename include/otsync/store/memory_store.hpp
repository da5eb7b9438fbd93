// The in-memory store: the reference backend for tests and `memory:`. Keeps
// the full op log and the snapshots callers asked to store; nothing survives
// the process.
//
// Thread safety: every member may be called from any thread (one mutex).
// Handlers run inline in the calling thread, after the lock is released, so a
// handler may call back into the store.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "otsync/store/store.hpp"

namespace otsync::store {

std::unique_ptr<store> make_memory_store();

/// Told of every commit, with the ops it appended, under the shared memory's
/// lock: so in commit order, as Redis publishes inside its commit script. It
/// must be quick and must not call into a store over the same memory.
using commit_listener =
    std::function<void(std::string_view publisher, const doc_key& key, std::span<const oplog::op_record> ops)>;

/// Documents held in memory and shared by several stores, as one Redis is by
/// several instances' Redis stores (in-process instances, tests).
struct shared_memory;
std::shared_ptr<shared_memory> make_shared_memory(commit_listener on_commit = {});

/// A store over `memory`, one per in-process instance. Its commits reach the
/// listener as `publisher`'s (the instance id its op feed skips). Closing it
/// closes this store only, not the memory.
std::unique_ptr<store> make_memory_store(std::shared_ptr<shared_memory> memory, std::string publisher);

/// Keeps the first `keep` ops of a document in `memory` and forgets the rest, with the snapshots
/// past them and their (src, seq) records: what a Redis failover without WAIT does to the last
/// acknowledged commits (for tests and drills of that loss).
void lose_ops(shared_memory& memory, const doc_key& key, std::uint64_t keep);

}  // namespace otsync::store
