// The registry's side of the document service (see service.hpp), and the
// ShareDB error for a failed read of the past.
#include "otsync/doc/service.hpp"

#include <utility>

#include "document.hpp"

#include "otsync/doc/registry.hpp"
#include "otsync/oplog/error.hpp"
#include "otsync/protocol/errors.hpp"

namespace otsync::doc {
namespace {

// The one "load at a version, check, replay": the store's snapshot at or
// below `version` plus the ops after it, refused when the log ends sooner.
void load_snapshot_at(store::store& storage, const store::doc_key& key, std::uint64_t version,
                      result_handler<oplog::snapshot> done) {
  storage.load(key, version, [version, done = std::move(done)](ot::result<store::loaded_document> loaded) {
    if (!loaded) return done(loaded.error());
    if (loaded->version_reached() < version) return done(oplog::errc::version_from_the_future);
    done(oplog::replay(std::move(loaded->base), loaded->ops));
  });
}

}  // namespace

void registry::fetch(const store::doc_key& key, std::optional<std::uint64_t> from, read_handler done,
                     std::chrono::steady_clock::time_point asked) {
  get(key)->fetch(from, std::move(done), asked);
}

subscription_handle registry::subscribe(const store::doc_key& key, std::shared_ptr<subscriber> who,
                                        std::optional<std::uint64_t> from, read_handler done,
                                        std::chrono::steady_clock::time_point asked) {
  auto doc = get(key);
  doc->subscribe(std::move(who), from, std::move(done), asked);
  return subscription_handle(std::move(doc));
}

void registry::unsubscribe(const subscription_handle& handle, const subscriber* who, std::function<void()> done) {
  // The instance that took the subscribe (an evicted one forwards to the live
  // one, after the subscribe it queued): never a new one loaded for this.
  if (auto doc = std::static_pointer_cast<document>(handle.target())) {
    doc->unsubscribe(who, std::move(done));
  } else if (done) {
    done();
  }
}

void registry::submit(const store::doc_key& key, oplog::submission op, submit_handler done) {
  get(key)->submit(std::move(op), std::move(done));
}

void registry::snapshot_at(const store::doc_key& key, std::uint64_t version, result_handler<oplog::snapshot> done) {
  load_snapshot_at(storage_, key, version, std::move(done));
}

void registry::snapshot_at_time(const store::doc_key& key, std::int64_t timestamp_ms,
                                result_handler<oplog::snapshot> done) {
  // The store outlives the registry (its handlers run also at shutdown): capture it, not `this`.
  storage_.version_at(key, timestamp_ms,
                      [&storage = storage_, key, done = std::move(done)](ot::result<std::uint64_t> version) mutable {
                        if (!version) return done(version.error());
                        load_snapshot_at(storage, key, *version, std::move(done));
                      });
}

void registry::transform_presence(const store::doc_key& key, std::uint64_t version, std::string src,
                                  std::optional<ot::selection> range, presence_handler done) {
  get(key)->transform_presence(version, std::move(src), range, std::move(done));
}

void registry::ops(const store::doc_key& key, std::uint64_t from, std::optional<std::uint64_t> to,
                   result_handler<std::vector<oplog::op_record>> done) {
  storage_.load_ops(key, from, to, std::move(done));
}

void registry::list_documents(const std::string& collection, const std::string& after_id, std::size_t limit,
                              result_handler<std::vector<store::document_summary>> done) {
  storage_.list_documents(collection, after_id, limit, std::move(done));
}

}  // namespace otsync::doc
