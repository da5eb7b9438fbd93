// The in-memory store: the reference backend for tests and `memory:`. Keeps
// the full op log and the snapshots callers asked to store; nothing survives
// the process.
//
// Thread safety: every member may be called from any thread (one mutex).
// Handlers run inline in the calling thread, after the lock is released, so a
// handler may call back into the store.
#pragma once

#include <memory>

#include "otsync/store/store.hpp"

namespace otsync::store {

std::unique_ptr<store> make_memory_store();

}  // namespace otsync::store
