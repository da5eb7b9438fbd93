#include "otsync/store/memory_store.hpp"

#include <algorithm>
#include <atomic>
#include <iterator>
#include <map>
#include <mutex>
#include <span>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "request_checks.hpp"

namespace otsync::store {
namespace {

/// One document: its whole log, the snapshots stored by request, and the
/// head's metadata (type and creator, as the last commit's `after` said).
struct document {
  std::vector<oplog::op_record> ops;
  std::map<std::uint64_t, oplog::snapshot> snapshots;
  std::optional<std::string> head_type;
  // (src, seq) of every op, for commit_all; hashed per author (a document has few authors, many ops each).
  std::unordered_map<std::string, std::unordered_set<std::uint64_t>> seen;

  [[nodiscard]] std::uint64_t head() const noexcept { return ops.size(); }
};

}  // namespace

// The documents, shared by every store over them (one per in-process instance).
struct shared_memory {
  explicit shared_memory(commit_listener listener) : on_commit(std::move(listener)) {}
  std::mutex mutex;
  std::map<doc_key, document> documents;
  const commit_listener on_commit;
};

namespace {

class memory_store final : public store {
 public:
  memory_store(std::shared_ptr<shared_memory> memory, std::string publisher)
      : memory_(std::move(memory)), publisher_(std::move(publisher)) {}

  void load(const doc_key& key, std::optional<std::uint64_t> version, handler<loaded_document> done) override {
    done(locked_load(key, version));
  }

  void load_ops(const doc_key& key, std::uint64_t from, std::optional<std::uint64_t> to,
                handler<std::vector<oplog::op_record>> done) override {
    done(locked_load_ops(key, from, to));
  }

  void version_at(const doc_key& key, std::int64_t timestamp_ms, handler<std::uint64_t> done) override {
    done(locked_version_at(key, timestamp_ms));
  }

  void commit(commit_request request, commit_handler done) override { done(locked_commit(std::move(request))); }

  bool atomic_batches() const noexcept override { return true; }
  void commit_all(std::vector<commit_request> requests, commit_handler done) override {
    done(locked_commit_all(std::move(requests)));
  }

  void list_documents(const std::string& collection, const std::string& after_id, std::size_t limit,
                      handler<std::vector<document_summary>> done) override {
    done(locked_list(collection, after_id, limit));
  }

  backend_health health() const override { return {true, "memory", {}}; }

  void close() override { closed_ = true; }

 private:
  // Each `locked_*` computes a result under the lock and returns it, so the
  // handler runs after the lock is gone.

  ot::result<loaded_document> locked_load(const doc_key& key, std::optional<std::uint64_t> version) {
    if (!detail::valid_key(key)) return errc::invalid_argument;
    std::lock_guard lock(memory_->mutex);
    if (closed_) return errc::closed;
    loaded_document result;
    const auto found = memory_->documents.find(key);
    if (found == memory_->documents.end()) return result;
    const document& doc = found->second;
    const std::uint64_t target = std::min(version.value_or(doc.head()), doc.head());
    // The greatest stored snapshot at or below the target; the implicit
    // version-0 empty document when none is.
    if (auto above = doc.snapshots.upper_bound(target); above != doc.snapshots.begin()) {
      result.base = std::prev(above)->second;
    }
    if (result.base.version > 0) result.base_timestamp_ms = doc.ops[result.base.version - 1].timestamp_ms;
    const auto first = doc.ops.begin() + static_cast<std::ptrdiff_t>(result.base.version);
    result.ops.assign(first, doc.ops.begin() + static_cast<std::ptrdiff_t>(target));
    return result;
  }

  ot::result<std::vector<oplog::op_record>> locked_load_ops(const doc_key& key, std::uint64_t from,
                                                            std::optional<std::uint64_t> to) {
    if (auto error = detail::check_range(key, from, to)) return error;
    std::lock_guard lock(memory_->mutex);
    if (closed_) return errc::closed;
    std::vector<oplog::op_record> result;
    const auto found = memory_->documents.find(key);
    if (found == memory_->documents.end()) return result;
    const auto& ops = found->second.ops;
    const std::uint64_t end = std::min(to.value_or(ops.size()), static_cast<std::uint64_t>(ops.size()));
    if (from < end) {
      result.assign(ops.begin() + static_cast<std::ptrdiff_t>(from), ops.begin() + static_cast<std::ptrdiff_t>(end));
    }
    return result;
  }

  ot::result<std::uint64_t> locked_version_at(const doc_key& key, std::int64_t timestamp_ms) {
    if (!detail::valid_key(key)) return errc::invalid_argument;
    std::lock_guard lock(memory_->mutex);
    if (closed_) return errc::closed;
    const auto found = memory_->documents.find(key);
    if (found == memory_->documents.end()) return std::uint64_t{0};
    const auto& ops = found->second.ops;
    return static_cast<std::uint64_t>(std::count_if(
        ops.begin(), ops.end(), [&](const oplog::op_record& op) { return op.timestamp_ms <= timestamp_ms; }));
  }

  std::error_code locked_commit(commit_request request) {
    if (auto error = detail::check_commit(request)) return error;
    std::lock_guard lock(memory_->mutex);
    if (closed_) return errc::closed;
    document& doc = memory_->documents[request.key];  // creating it changes nothing visible if the CAS fails
    if (doc.head() != request.op.version) {
      if (doc.ops.empty()) memory_->documents.erase(request.key);
      return errc::version_conflict;
    }
    append(doc, request);
    tell_listener(request.key, doc, 1);
    return {};
  }

  std::error_code locked_commit_all(std::vector<commit_request> requests) {
    if (auto error = detail::check_commit_all(requests)) return error;
    std::lock_guard lock(memory_->mutex);
    if (closed_) return errc::closed;
    const doc_key key = requests.front().key;
    document& doc = memory_->documents[key];
    bool conflict = doc.head() != requests.front().op.version;
    for (const auto& r : requests) {
      if (r.op.src.empty()) continue;
      auto author = doc.seen.find(r.op.src);
      conflict = conflict || (author != doc.seen.end() && author->second.contains(r.op.seq));
    }
    if (conflict) {
      if (doc.ops.empty()) memory_->documents.erase(key);
      return errc::version_conflict;
    }
    for (auto& r : requests) append(doc, r);
    tell_listener(key, doc, requests.size());
    return {};
  }

  // Under the lock, as Redis publishes inside its commit script: listeners see commits in order.
  void tell_listener(const doc_key& key, const document& doc, std::size_t committed) const {
    if (memory_->on_commit) memory_->on_commit(publisher_, key, std::span(doc.ops).last(committed));
  }

  // Moves the op, the snapshot and the type out of `request`; its key stays.
  static void append(document& doc, commit_request& request) {
    doc.head_type = request.after.type_uri;
    if (!request.op.src.empty()) doc.seen[request.op.src].insert(request.op.seq);
    if (request.store_snapshot) doc.snapshots.insert_or_assign(request.after.version, std::move(request.after));
    doc.ops.push_back(std::move(request.op));
  }

  ot::result<std::vector<document_summary>> locked_list(const std::string& collection, const std::string& after_id,
                                                        std::size_t limit) {
    if (collection.empty()) return errc::invalid_argument;
    std::lock_guard lock(memory_->mutex);
    if (closed_) return errc::closed;
    std::vector<document_summary> result;
    for (auto it = memory_->documents.upper_bound(doc_key{collection, after_id});
         it != memory_->documents.end() && it->first.collection == collection && result.size() < limit; ++it) {
      result.push_back({it->first.id, it->second.head(), it->second.head_type});
    }
    return result;
  }

  std::shared_ptr<shared_memory> memory_;
  std::string publisher_;
  std::atomic<bool> closed_{false};
};

}  // namespace

std::shared_ptr<shared_memory> make_shared_memory(commit_listener on_commit) {
  return std::make_shared<shared_memory>(std::move(on_commit));
}

std::unique_ptr<store> make_memory_store(std::shared_ptr<shared_memory> memory, std::string publisher) {
  return std::make_unique<memory_store>(std::move(memory), std::move(publisher));
}

void lose_ops(shared_memory& memory, const doc_key& key, std::uint64_t keep) {
  std::lock_guard lock(memory.mutex);
  auto found = memory.documents.find(key);
  if (found == memory.documents.end() || found->second.head() <= keep) return;
  document& doc = found->second;
  doc.ops.resize(keep);
  doc.snapshots.erase(doc.snapshots.upper_bound(keep), doc.snapshots.end());
  doc.seen.clear();
  doc.head_type.reset();
  for (const auto& op : doc.ops) {
    if (!op.src.empty()) doc.seen[op.src].insert(op.seq);
    if (const auto* create = std::get_if<oplog::create_body>(&op.body)) doc.head_type = create->type_uri;
    if (std::holds_alternative<oplog::delete_body>(op.body)) doc.head_type.reset();
  }
}

std::unique_ptr<store> make_memory_store() {
  return make_memory_store(make_shared_memory(), {});
}

}  // namespace otsync::store
