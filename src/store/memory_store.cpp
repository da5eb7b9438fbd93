#include "otsync/store/memory_store.hpp"

#include <algorithm>
#include <iterator>
#include <map>
#include <mutex>
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

class memory_store final : public store {
 public:
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

  void close() override {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }

 private:
  // Each `locked_*` computes a result under the lock and returns it, so the
  // handler runs after the lock is gone.

  ot::result<loaded_document> locked_load(const doc_key& key, std::optional<std::uint64_t> version) {
    if (!detail::valid_key(key)) return errc::invalid_argument;
    std::lock_guard lock(mutex_);
    if (closed_) return errc::closed;
    loaded_document result;
    const auto found = documents_.find(key);
    if (found == documents_.end()) return result;
    const document& doc = found->second;
    const std::uint64_t target = std::min(version.value_or(doc.head()), doc.head());
    // The greatest stored snapshot at or below the target; the implicit
    // version-0 empty document when none is.
    if (auto above = doc.snapshots.upper_bound(target); above != doc.snapshots.begin()) {
      result.base = std::prev(above)->second;
    }
    const auto first = doc.ops.begin() + static_cast<std::ptrdiff_t>(result.base.version);
    result.ops.assign(first, doc.ops.begin() + static_cast<std::ptrdiff_t>(target));
    return result;
  }

  ot::result<std::vector<oplog::op_record>> locked_load_ops(const doc_key& key, std::uint64_t from,
                                                          std::optional<std::uint64_t> to) {
    if (auto error = detail::check_range(key, from, to)) return error;
    std::lock_guard lock(mutex_);
    if (closed_) return errc::closed;
    std::vector<oplog::op_record> result;
    const auto found = documents_.find(key);
    if (found == documents_.end()) return result;
    const auto& ops = found->second.ops;
    const std::uint64_t end = std::min(to.value_or(ops.size()), static_cast<std::uint64_t>(ops.size()));
    if (from < end) {
      result.assign(ops.begin() + static_cast<std::ptrdiff_t>(from), ops.begin() + static_cast<std::ptrdiff_t>(end));
    }
    return result;
  }

  ot::result<std::uint64_t> locked_version_at(const doc_key& key, std::int64_t timestamp_ms) {
    if (!detail::valid_key(key)) return errc::invalid_argument;
    std::lock_guard lock(mutex_);
    if (closed_) return errc::closed;
    const auto found = documents_.find(key);
    if (found == documents_.end()) return std::uint64_t{0};
    const auto& ops = found->second.ops;
    return static_cast<std::uint64_t>(std::count_if(
        ops.begin(), ops.end(), [&](const oplog::op_record& op) { return op.timestamp_ms <= timestamp_ms; }));
  }

  std::error_code locked_commit(commit_request request) {
    if (auto error = detail::check_commit(request)) return error;
    std::lock_guard lock(mutex_);
    if (closed_) return errc::closed;
    document& doc = documents_[request.key];  // creating it changes nothing visible if the CAS fails
    if (doc.head() != request.op.version) {
      if (doc.ops.empty()) documents_.erase(request.key);
      return errc::version_conflict;
    }
    append(doc, std::move(request));
    return {};
  }

  std::error_code locked_commit_all(std::vector<commit_request> requests) {
    if (auto error = detail::check_commit_all(requests)) return error;
    std::lock_guard lock(mutex_);
    if (closed_) return errc::closed;
    const doc_key key = requests.front().key;
    document& doc = documents_[key];
    bool conflict = doc.head() != requests.front().op.version;
    for (const auto& r : requests) {
      if (r.op.src.empty()) continue;
      auto author = doc.seen.find(r.op.src);
      conflict = conflict || (author != doc.seen.end() && author->second.contains(r.op.seq));
    }
    if (conflict) {
      if (doc.ops.empty()) documents_.erase(key);
      return errc::version_conflict;
    }
    for (auto& r : requests) append(doc, std::move(r));
    return {};
  }

  static void append(document& doc, commit_request request) {
    doc.head_type = request.after.type_uri;
    if (!request.op.src.empty()) doc.seen[request.op.src].insert(request.op.seq);
    if (request.store_snapshot) doc.snapshots.insert_or_assign(request.after.version, std::move(request.after));
    doc.ops.push_back(std::move(request.op));
  }

  ot::result<std::vector<document_summary>> locked_list(const std::string& collection, const std::string& after_id,
                                                        std::size_t limit) {
    if (collection.empty()) return errc::invalid_argument;
    std::lock_guard lock(mutex_);
    if (closed_) return errc::closed;
    std::vector<document_summary> result;
    for (auto it = documents_.upper_bound(doc_key{collection, after_id});
         it != documents_.end() && it->first.collection == collection && result.size() < limit; ++it) {
      result.push_back({it->first.id, it->second.head(), it->second.head_type});
    }
    return result;
  }

  std::mutex mutex_;
  std::map<doc_key, document> documents_;
  bool closed_ = false;
};

}  // namespace

std::unique_ptr<store> make_memory_store() {
  return std::make_unique<memory_store>();
}

}  // namespace otsync::store
