// The rope is a B+ tree: leaves hold UTF-8 chunks inline, inner nodes cache each child's byte and
// code-point counts, so a seek scans a few small arrays and never touches text on the way down.
#include "otsync/ot/rope.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <utility>
#include <vector>

#include "otsync/ot/unicode.hpp"

namespace otsync::ot {
namespace {

// Bytes of text per leaf. Measured against 256 and 1024 on keystroke traces and random edits in a
// 1 MB document: 1024 is a few percent faster on ASCII but clearly slower on non-ASCII text, where
// a seek inside the leaf has to scan; 256 is ~10% slower on ASCII (more splits, deeper tree).
constexpr std::size_t leaf_capacity = 512;
// A leaf below this is merged with or refilled from a neighbour. A quarter rather than a half, so
// the halves of a split (each at least capacity / 2 - 3 bytes) are far from underfull and a
// delete right after a split does not merge them back.
constexpr std::size_t leaf_min = leaf_capacity / 4;
constexpr std::size_t fanout = 16;
// A quarter rather than a half for the same hysteresis, and because repairing a merged node can
// cost it one child: a node that just received half of a redistribution must stay healthy.
constexpr std::size_t fanout_min = fanout / 4;
// Non-root inner nodes have at least fanout_min children and the root two, so a tree of height h
// has at least 2 * 4^(h-2) leaves of over 512 bytes each; no address space holds a tree this tall.
constexpr std::size_t max_depth = 64;

static_assert(leaf_capacity >= 64 && leaf_capacity <= UINT32_MAX);
static_assert(fanout >= 4 && fanout_min >= 2);

constexpr bool is_lead(char c) noexcept {
  return unicode::is_lead_byte(static_cast<unsigned char>(c));
}

constexpr std::size_t ceil_div(std::size_t a, std::size_t b) noexcept {
  return (a + b - 1) / b;
}

// Lead bytes (those not 10xxxxxx) among the eight bytes of `word`.
constexpr std::size_t lead_bytes(std::uint64_t word) noexcept {
  // Bit 7 of a byte ends up set for continuation bytes; the multiply sums those bits.
  const std::uint64_t continuation = word & ~(word << 1) & 0x8080808080808080ULL;
  return 8 - static_cast<std::size_t>(((continuation >> 7) * 0x0101010101010101ULL) >> 56);
}

std::uint64_t load8(const char* bytes) noexcept {
  std::uint64_t word = 0;
  std::memcpy(&word, bytes, 8);
  return word;
}

// Byte offset of code point `index` in valid UTF-8 `text`, `text.size()` past the end: the same
// answer as unicode::byte_offset, but counting lead bytes eight at a time in any text, where that
// one goes byte by byte after the first non-ASCII byte (non-ASCII leaves seek several times faster).
std::size_t seek(std::string_view text, std::size_t index) noexcept {
  const char* bytes = text.data();
  const std::size_t size = text.size();
  std::size_t offset = 0;
  for (; offset + 8 <= size; offset += 8) {
    const std::size_t leads = lead_bytes(load8(bytes + offset));
    if (index < leads) break;
    index -= leads;
  }
  for (; offset < size; ++offset) {
    if (is_lead(bytes[offset])) {
      if (index == 0) return offset;
      --index;
    }
  }
  return size;
}

// Byte offset of the code point `from_end` code points before the end of `text` (1 = the last);
// `from_end` must be at least 1 and at most the text's code-point count. Scanning from the nearer
// end halves the average seek in a leaf.
std::size_t seek_back(std::string_view text, std::size_t from_end) noexcept {
  const char* bytes = text.data();
  std::size_t offset = text.size();
  for (; offset >= 8; offset -= 8) {
    const std::size_t leads = lead_bytes(load8(bytes + offset - 8));
    if (from_end <= leads) break;
    from_end -= leads;
  }
  while (offset > 0) {
    --offset;
    if (is_lead(bytes[offset]) && --from_end == 0) return offset;
  }
  return 0;
}

// Up to three byte ranges read as one string, so an overflowing leaf can be cut into new leaves
// straight from `prefix + inserted + suffix` without concatenating them first.
struct pieces {
  std::string_view part[3];

  [[nodiscard]] std::size_t size() const noexcept { return part[0].size() + part[1].size() + part[2].size(); }

  [[nodiscard]] char at(std::size_t i) const noexcept {
    for (const std::string_view& p : part) {
      if (i < p.size()) return p[i];
      i -= p.size();
    }
    return 0;
  }

  // Copies bytes [from, to) to `out`.
  void copy(std::size_t from, std::size_t to, char* out) const noexcept {
    for (const std::string_view& p : part) {
      if (from >= p.size()) {  // also skips empty parts, whose data() may be null
        from -= p.size();
        to -= p.size();
        continue;
      }
      const std::size_t end = std::min(to, p.size());
      std::memcpy(out, p.data() + from, end - from);
      out += end - from;
      if (to <= p.size()) return;
      from = 0;
      to -= p.size();
    }
  }
};

// Appends the end offsets of the leaf chunks `text` is cut into. Every chunk fits a leaf and
// starts on a code point; when several are needed they are near-equal, so each holds over half a
// leaf (less at most 3 bytes to reach a code-point boundary) and later inserts have room.
void plan_chunks(const pieces& text, std::vector<std::size_t>& ends) {
  const std::size_t total = text.size();
  std::size_t begin = 0;
  while (total - begin > leaf_capacity) {
    const std::size_t rest = total - begin;
    std::size_t end = begin + ceil_div(rest, ceil_div(rest, leaf_capacity));
    // The bound only matters for invalid input, which must not send us before `begin`.
    while (end > begin + 1 && !is_lead(text.at(end))) --end;
    ends.push_back(end);
    begin = end;
  }
  ends.push_back(total);
}

}  // namespace

struct rope::node {
  struct leaf;
  struct inner;
  struct impl;

  explicit node(bool leaf_node) noexcept : is_leaf_(leaf_node) {}

  const bool is_leaf_;
};

struct rope::node::leaf final : rope::node {
  leaf() noexcept : node(true) {}

  [[nodiscard]] std::string_view text() const noexcept { return {data_, bytes_}; }

  std::uint32_t bytes_ = 0;
  std::uint32_t code_points_ = 0;
  char data_[leaf_capacity];  // left uninitialised: only [0, bytes_) is ever read
};

struct rope::node::inner final : rope::node {
  inner() noexcept : node(false) {}

  std::size_t count_ = 0;
  // Per-child totals live here, not in the children, so seeking reads one cache-friendly array.
  std::size_t bytes_[fanout];
  std::size_t code_points_[fanout];
  node* child_[fanout];
};

// All the tree algorithms; a member of rope::node so that it may name the private types.
struct rope::node::impl {
  struct entry {
    node* child;
    std::size_t bytes;
    std::size_t code_points;
  };

  struct step {
    inner* parent;
    std::size_t index;
  };

  static leaf* as_leaf(node* n) noexcept { return static_cast<leaf*>(n); }
  static const leaf* as_leaf(const node* n) noexcept { return static_cast<const leaf*>(n); }
  static inner* as_inner(node* n) noexcept { return static_cast<inner*>(n); }
  static const inner* as_inner(const node* n) noexcept { return static_cast<const inner*>(n); }

  static void destroy(node* n) noexcept {
    if (n->is_leaf_) {
      delete as_leaf(n);
      return;
    }
    inner* p = as_inner(n);
    for (std::size_t i = 0; i < p->count_; ++i) destroy(p->child_[i]);
    delete p;
  }

  static entry totals(node* n) noexcept {
    if (n->is_leaf_) {
      const leaf* l = as_leaf(n);
      return {n, l->bytes_, l->code_points_};
    }
    const inner* p = as_inner(n);
    entry e{n, 0, 0};
    for (std::size_t i = 0; i < p->count_; ++i) {
      e.bytes += p->bytes_[i];
      e.code_points += p->code_points_[i];
    }
    return e;
  }

  static entry get(const inner* p, std::size_t i) noexcept { return {p->child_[i], p->bytes_[i], p->code_points_[i]}; }

  static void set(inner* p, std::size_t i, const entry& e) noexcept {
    p->child_[i] = e.child;
    p->bytes_[i] = e.bytes;
    p->code_points_[i] = e.code_points;
  }

  static void remove_entry(inner* p, std::size_t i) noexcept {
    for (std::size_t k = i + 1; k < p->count_; ++k) set(p, k - 1, get(p, k));
    --p->count_;
  }

  // Byte offset of code point `cp` in `l`, clamped to its end.
  static std::size_t leaf_offset(const leaf* l, std::size_t cp) noexcept {
    if (l->bytes_ == l->code_points_) return std::min<std::size_t>(cp, l->bytes_);  // pure ASCII
    if (cp >= l->code_points_) return l->bytes_;
    if (cp > l->code_points_ / 2) return seek_back(l->text(), l->code_points_ - cp);
    return seek(l->text(), cp);
  }

  static void fill_leaf(leaf* l, const pieces& text, std::size_t from, std::size_t to) noexcept {
    text.copy(from, to, l->data_);
    l->bytes_ = static_cast<std::uint32_t>(to - from);
    l->code_points_ = static_cast<std::uint32_t>(unicode::count_code_points(l->text()));
  }

  // Spreads `src[0, n)` evenly over the `g` inner nodes in `groups[i].child` and records their
  // totals. With g = ceil(n / fanout) every group holds at least fanout / 2 children when g > 1.
  static void fill_groups(const entry* src, std::size_t n, entry* groups, std::size_t g) noexcept {
    const std::size_t base = n / g;
    const std::size_t extra = n % g;
    std::size_t k = 0;
    for (std::size_t j = 0; j < g; ++j) {
      inner* p = as_inner(groups[j].child);
      const std::size_t take = base + (j < extra ? 1 : 0);
      p->count_ = take;
      groups[j].bytes = 0;
      groups[j].code_points = 0;
      for (std::size_t c = 0; c < take; ++c, ++k) {
        set(p, c, src[k]);
        groups[j].bytes += src[k].bytes;
        groups[j].code_points += src[k].code_points;
      }
    }
  }

  // Frees the subtrees listed in `v` unless released; keeps builds leak-free under bad_alloc.
  struct owner {
    std::vector<entry>* v[2];
    ~owner() {
      for (std::vector<entry>* list : v) {
        if (list == nullptr) continue;
        for (const entry& e : *list) destroy(e.child);
      }
    }
    void release() noexcept { v[0] = v[1] = nullptr; }
  };

  // Groups `level` under new parents until one node remains in `level.front()`.
  static void stack_levels(std::vector<entry>& level, std::vector<entry>& next) {
    while (level.size() > 1) {
      const std::size_t g = ceil_div(level.size(), fanout);
      next.clear();
      next.reserve(g);
      for (std::size_t j = 0; j < g; ++j) next.push_back({new inner, 0, 0});
      fill_groups(level.data(), level.size(), next.data(), g);
      level.clear();  // now owned through `next`
      level.swap(next);
    }
  }

  static node* build(std::string_view text) {
    const pieces all{{text, {}, {}}};
    std::vector<std::size_t> ends;
    plan_chunks(all, ends);
    std::vector<entry> level;
    std::vector<entry> next;
    owner guard{{&level, &next}};
    level.reserve(ends.size());
    std::size_t begin = 0;
    for (const std::size_t end : ends) {
      leaf* l = new leaf;
      level.push_back({l, 0, 0});  // cannot throw: reserved
      fill_leaf(l, all, begin, end);
      level.back() = totals(l);
      begin = end;
    }
    stack_levels(level, next);
    node* root = level.front().child;
    guard.release();
    return root;
  }

  static node* clone(const node* n) {
    if (n->is_leaf_) {
      const leaf* src = as_leaf(n);
      leaf* l = new leaf;
      std::memcpy(l->data_, src->data_, src->bytes_);
      l->bytes_ = src->bytes_;
      l->code_points_ = src->code_points_;
      return l;
    }
    const inner* src = as_inner(n);
    inner* p = new inner;
    try {
      // count_ grows with each cloned child, so a failure frees exactly what was made.
      for (std::size_t i = 0; i < src->count_; ++i) {
        set(p, i, {clone(src->child_[i]), src->bytes_[i], src->code_points_[i]});
        p->count_ = i + 1;
      }
    } catch (...) {
      destroy(p);
      throw;
    }
    return p;
  }

  // Nodes allocated before an insert changes anything, so bad_alloc leaves the rope untouched.
  template <class T>
  struct pool {
    std::vector<T*> items;
    std::size_t used = 0;

    pool() = default;
    pool(const pool&) = delete;
    pool& operator=(const pool&) = delete;
    ~pool() {
      for (std::size_t i = used; i < items.size(); ++i) delete items[i];
    }
    void allocate(std::size_t n) {
      items.reserve(n);
      for (std::size_t i = 0; i < n; ++i) items.push_back(new T);
    }
    T* take() noexcept { return items[used++]; }
  };

  static void insert(rope& r, std::size_t pos, std::string_view text, std::size_t text_cps) {
    step path[max_depth];
    std::size_t depth = 0;
    node* n = r.root_;
    while (!n->is_leaf_) {
      inner* p = as_inner(n);
      const std::size_t last = p->count_ - 1;
      std::size_t i = 0;
      // `>` rather than `>=`: at a boundary, append to the left leaf (typing extends it).
      while (i < last && pos > p->code_points_[i]) pos -= p->code_points_[i++];
      path[depth++] = {p, i};
      n = p->child_[i];
    }
    leaf* l = as_leaf(n);
    const std::size_t offset = leaf_offset(l, pos);

    // Text taken from this very leaf (say via for_each_chunk) would be overwritten as we go.
    std::string own;
    const std::less<const char*> before;
    if (before(text.data(), l->data_ + leaf_capacity) && before(l->data_, text.data() + text.size())) {
      own.assign(text);
      text = own;
    }

    if (l->bytes_ + text.size() <= leaf_capacity) {
      char* at = l->data_ + offset;
      std::memmove(at + text.size(), at, l->bytes_ - offset);
      std::memcpy(at, text.data(), text.size());
      l->bytes_ += static_cast<std::uint32_t>(text.size());
      l->code_points_ += static_cast<std::uint32_t>(text_cps);
      for (std::size_t d = 0; d < depth; ++d) {
        path[d].parent->bytes_[path[d].index] += text.size();
        path[d].parent->code_points_[path[d].index] += text_cps;
      }
      return;
    }
    insert_split(r, path, depth, l, offset, text, text_cps);
  }

  // The leaf overflows: cut `prefix + text + suffix` into leaves and pass the new ones up, splitting
  // parents that overflow in turn and stacking new levels when the root splits.
  static void insert_split(rope& r, const step* path, std::size_t depth, leaf* l, std::size_t offset,
                           std::string_view text, std::size_t text_cps) {
    // Phase 1: plan and allocate everything that phase 2 needs; may throw, changes nothing.
    char old[leaf_capacity];
    const std::size_t old_bytes = l->bytes_;
    std::memcpy(old, l->data_, old_bytes);  // l->data_ is overwritten before its tail is read
    const pieces all{{std::string_view(old, offset), text, std::string_view(old + offset, old_bytes - offset)}};
    std::vector<std::size_t> ends;
    plan_chunks(all, ends);

    std::size_t carry = ends.size() - 1;  // new nodes handed to the level above
    std::size_t widest = ends.size();
    std::size_t new_inners = 0;
    for (std::size_t d = depth; carry > 0 && d > 0;) {
      --d;
      const std::size_t total = path[d].parent->count_ + carry;
      widest = std::max(widest, total);
      carry = total <= fanout ? 0 : ceil_div(total, fanout) - 1;
      new_inners += carry;
    }
    for (std::size_t width = carry + 1; width > 1;) {  // levels stacked over a split root
      width = ceil_div(width, fanout);
      new_inners += width;
    }
    pool<leaf> leaves;
    leaves.allocate(ends.size() - 1);
    pool<inner> inners;
    inners.allocate(new_inners);
    std::vector<entry> carried;
    std::vector<entry> scratch;
    std::vector<entry> groups;
    carried.reserve(widest);
    scratch.reserve(widest);
    groups.reserve(widest);

    // Phase 2: nothing below allocates or throws.
    std::size_t begin = 0;
    for (std::size_t c = 0; c < ends.size(); ++c) {
      leaf* dst = c == 0 ? l : leaves.take();
      fill_leaf(dst, all, begin, ends[c]);
      if (c > 0) carried.push_back(totals(dst));
      begin = ends[c];
    }
    for (std::size_t d = depth; d > 0;) {
      --d;
      inner* p = path[d].parent;
      const std::size_t i = path[d].index;
      if (carried.empty()) {
        p->bytes_[i] += text.size();
        p->code_points_[i] += text_cps;
        continue;
      }
      set(p, i, totals(p->child_[i]));
      const std::size_t total = p->count_ + carried.size();
      if (total <= fanout) {
        for (std::size_t k = p->count_; k-- > i + 1;) set(p, k + carried.size(), get(p, k));
        for (std::size_t c = 0; c < carried.size(); ++c) set(p, i + 1 + c, carried[c]);
        p->count_ = total;
        carried.clear();
        continue;
      }
      scratch.clear();
      for (std::size_t k = 0; k <= i; ++k) scratch.push_back(get(p, k));
      scratch.insert(scratch.end(), carried.begin(), carried.end());
      for (std::size_t k = i + 1; k < p->count_; ++k) scratch.push_back(get(p, k));
      const std::size_t g = ceil_div(total, fanout);
      groups.clear();
      groups.push_back({p, 0, 0});  // p keeps the first group
      for (std::size_t j = 1; j < g; ++j) groups.push_back({inners.take(), 0, 0});
      fill_groups(scratch.data(), total, groups.data(), g);
      carried.assign(groups.begin() + 1, groups.end());
    }
    if (carried.empty()) return;
    scratch.clear();
    scratch.push_back(totals(r.root_));
    scratch.insert(scratch.end(), carried.begin(), carried.end());
    while (scratch.size() > 1) {
      const std::size_t g = ceil_div(scratch.size(), fanout);
      groups.clear();
      for (std::size_t j = 0; j < g; ++j) groups.push_back({inners.take(), 0, 0});
      fill_groups(scratch.data(), scratch.size(), groups.data(), g);
      scratch.swap(groups);
    }
    r.root_ = scratch.front().child;
  }

  static bool underfull(const inner* p, std::size_t i) noexcept {
    const node* c = p->child_[i];
    return c->is_leaf_ ? p->bytes_[i] < leaf_min : as_inner(c)->count_ < fanout_min;
  }

  // Makes the underfull child `i` of `p` (which has a sibling) healthy by merging it with a
  // neighbour, or when both do not fit one node, by sharing evenly. Returns the index of the left
  // node of the pair, the first one that may need another look.
  static std::size_t rebalance(inner* p, std::size_t i) noexcept {
    const std::size_t left = i > 0 ? i - 1 : i;
    if (p->child_[left]->is_leaf_) {
      rebalance_leaves(p, left);
    } else {
      rebalance_inners(p, left);
    }
    return left;
  }

  static void rebalance_leaves(inner* p, std::size_t left) noexcept {
    leaf* a = as_leaf(p->child_[left]);
    leaf* b = as_leaf(p->child_[left + 1]);
    const std::size_t total = std::size_t{a->bytes_} + b->bytes_;
    if (total <= leaf_capacity) {
      std::memcpy(a->data_ + a->bytes_, b->data_, b->bytes_);
      a->bytes_ += b->bytes_;
      a->code_points_ += b->code_points_;
      set(p, left, totals(a));
      remove_entry(p, left + 1);
      delete b;
      return;
    }
    // Cut the pair in the middle, backing up to a code-point start. Both halves then hold at
    // least (capacity + 1) / 2 - 3 bytes, and at most total / 2 + 3 <= capacity.
    std::size_t cut = total / 2;
    const auto byte_at = [&](std::size_t k) { return k < a->bytes_ ? a->data_[k] : b->data_[k - a->bytes_]; };
    while (cut > 1 && !is_lead(byte_at(cut))) --cut;
    if (cut < a->bytes_) {
      const std::size_t move = a->bytes_ - cut;
      std::memmove(b->data_ + move, b->data_, b->bytes_);
      std::memcpy(b->data_, a->data_ + cut, move);
      const auto moved = static_cast<std::uint32_t>(unicode::count_code_points(std::string_view(b->data_, move)));
      a->bytes_ -= static_cast<std::uint32_t>(move);
      a->code_points_ -= moved;
      b->bytes_ += static_cast<std::uint32_t>(move);
      b->code_points_ += moved;
    } else if (cut > a->bytes_) {
      const std::size_t move = cut - a->bytes_;
      std::memcpy(a->data_ + a->bytes_, b->data_, move);
      const auto moved = static_cast<std::uint32_t>(unicode::count_code_points(std::string_view(b->data_, move)));
      std::memmove(b->data_, b->data_ + move, b->bytes_ - move);
      a->bytes_ += static_cast<std::uint32_t>(move);
      a->code_points_ += moved;
      b->bytes_ -= static_cast<std::uint32_t>(move);
      b->code_points_ -= moved;
    }
    set(p, left, totals(a));
    set(p, left + 1, totals(b));
  }

  static void rebalance_inners(inner* p, std::size_t left) noexcept {
    inner* a = as_inner(p->child_[left]);
    inner* b = as_inner(p->child_[left + 1]);
    if (a->count_ + b->count_ <= fanout) {
      for (std::size_t k = 0; k < b->count_; ++k) set(a, a->count_ + k, get(b, k));
      a->count_ += b->count_;
      b->count_ = 0;
      p->bytes_[left] += p->bytes_[left + 1];
      p->code_points_[left] += p->code_points_[left + 1];
      remove_entry(p, left + 1);
      delete b;
      repair_children(a);
      return;
    }
    const std::size_t want = (a->count_ + b->count_) / 2;  // a's share; b gets the rest
    if (a->count_ > want) {
      const std::size_t move = a->count_ - want;
      for (std::size_t k = b->count_; k-- > 0;) set(b, k + move, get(b, k));
      for (std::size_t k = 0; k < move; ++k) set(b, k, get(a, want + k));
      a->count_ = want;
      b->count_ += move;
    } else {
      const std::size_t move = want - a->count_;
      for (std::size_t k = 0; k < move; ++k) set(a, a->count_ + k, get(b, k));
      for (std::size_t k = move; k < b->count_; ++k) set(b, k - move, get(b, k));
      a->count_ = want;
      b->count_ -= move;
    }
    set(p, left, totals(a));
    set(p, left + 1, totals(b));
    repair_children(a);
    repair_children(b);
  }

  // A node left with a single child after an erase may hold an underfull child it could not fix
  // alone. Once merged with a sibling that child has neighbours, so fix it (and, recursively, its
  // own single child) here. Does not change `n`'s totals.
  static void repair_children(inner* n) noexcept { repair_range(n, 0, n->count_); }

  // Rebalances underfull children of `p` from index `first`, up to about `end` (merges shift
  // children left, so a child or two beyond may be looked at too, harmlessly).
  static void repair_range(inner* p, std::size_t first, std::size_t end) noexcept {
    std::size_t k = first;
    while (k < end && k < p->count_ && p->count_ > 1) {
      if (underfull(p, k)) {
        // After a merge the pair's left node may still be underfull (both were); after a
        // redistribution both are healthy. Either way look at the left node again.
        k = rebalance(p, k);
      } else {
        ++k;
      }
    }
  }

  // Removes code points [pos, pos + count) from the subtree of `n`, which holds more than that
  // (the caller frees wholly covered subtrees). Returns the bytes removed. Afterwards every node in
  // the subtree is healthy except `n` and, if `n` has one child, that child's chain downwards.
  static std::size_t erase(node* n, std::size_t pos, std::size_t count) noexcept {
    if (n->is_leaf_) {
      leaf* l = as_leaf(n);
      std::size_t from = pos;
      std::size_t to = pos + count;
      if (l->bytes_ != l->code_points_) {
        from = leaf_offset(l, pos);
        to = from + seek(l->text().substr(from), count);
      }
      std::memmove(l->data_ + from, l->data_ + to, l->bytes_ - to);
      l->bytes_ -= static_cast<std::uint32_t>(to - from);
      l->code_points_ -= static_cast<std::uint32_t>(count);
      return to - from;
    }
    inner* p = as_inner(n);
    std::size_t i = 0;
    while (pos >= p->code_points_[i]) pos -= p->code_points_[i++];
    const std::size_t first = i;
    std::size_t kept = first;  // survivors are compacted down to here as we go
    std::size_t removed = 0;
    while (count > 0) {
      const std::size_t cps = p->code_points_[i];
      if (pos == 0 && count >= cps) {
        removed += p->bytes_[i];
        count -= cps;
        destroy(p->child_[i]);
      } else {
        const std::size_t take = std::min(count, cps - pos);
        const std::size_t bytes = erase(p->child_[i], pos, take);
        p->bytes_[i] -= bytes;
        p->code_points_[i] -= take;
        removed += bytes;
        count -= take;
        set(p, kept++, get(p, i));
      }
      pos = 0;
      ++i;
    }
    const std::size_t survivors_end = kept;
    if (kept != i) {
      for (std::size_t k = i; k < p->count_; ++k) set(p, kept++, get(p, k));
      p->count_ = kept;
    }
    repair_range(p, first, survivors_end);
    return removed;
  }

  // Byte offset of code point `cp` (clamped to the end).
  static std::size_t byte_index(const node* n, std::size_t cp) noexcept {
    std::size_t bytes = 0;
    while (!n->is_leaf_) {
      const inner* p = as_inner(n);
      std::size_t i = 0;
      while (i + 1 < p->count_ && cp >= p->code_points_[i]) {
        cp -= p->code_points_[i];
        bytes += p->bytes_[i++];
      }
      n = p->child_[i];
    }
    return bytes + leaf_offset(as_leaf(n), cp);
  }

  // Calls fn for the pieces of code points [pos, pos + count); the range lies inside `n`.
  template <class Fn>
  static void visit_range(const node* n, std::size_t pos, std::size_t count, Fn& fn) {
    if (n->is_leaf_) {
      const leaf* l = as_leaf(n);
      const std::size_t from = leaf_offset(l, pos);
      const std::size_t to = l->bytes_ == l->code_points_ ? std::min<std::size_t>(pos + count, l->bytes_)
                                                          : from + seek(l->text().substr(from), count);
      fn(std::string_view(l->data_ + from, to - from));
      return;
    }
    const inner* p = as_inner(n);
    for (std::size_t i = 0; i < p->count_ && count > 0; ++i) {
      if (pos >= p->code_points_[i]) {
        pos -= p->code_points_[i];
        continue;
      }
      const std::size_t take = std::min(count, p->code_points_[i] - pos);
      visit_range(p->child_[i], pos, take, fn);
      count -= take;
      pos = 0;
    }
  }

  static void visit_all(const node* n, chunk_fn fn, void* context) {
    if (n->is_leaf_) {
      fn(context, as_leaf(n)->text());
      return;
    }
    const inner* p = as_inner(n);
    for (std::size_t i = 0; i < p->count_; ++i) visit_all(p->child_[i], fn, context);
  }

  // Verifies `n`'s subtree; reports its height and totals.
  static bool check(const node* n, bool is_root, std::size_t& height, std::size_t& bytes,
                    std::size_t& code_points) noexcept {
    if (n->is_leaf_) {
      const leaf* l = as_leaf(n);
      if (l->bytes_ == 0 || l->bytes_ > leaf_capacity) return false;
      if (!is_root && l->bytes_ < leaf_min) return false;
      // A chunk that validates on its own starts and ends on code-point boundaries.
      std::size_t counted = 0;
      if (unicode::validate_utf8(l->text(), counted) != unicode::utf8_status::valid) return false;
      if (counted != l->code_points_) return false;
      height = 0;
      bytes = l->bytes_;
      code_points = l->code_points_;
      return true;
    }
    const inner* p = as_inner(n);
    if (p->count_ < (is_root ? 2 : fanout_min) || p->count_ > fanout) return false;
    bytes = 0;
    code_points = 0;
    for (std::size_t i = 0; i < p->count_; ++i) {
      std::size_t h = 0;
      std::size_t b = 0;
      std::size_t c = 0;
      if (!check(p->child_[i], false, h, b, c)) return false;
      if (b != p->bytes_[i] || c != p->code_points_[i]) return false;
      if (i > 0 && h + 1 != height) return false;  // all leaves at one depth
      height = h + 1;
      bytes += b;
      code_points += c;
    }
    return true;
  }
};

rope::rope() noexcept = default;

rope::rope(std::string_view utf8) : root_(utf8.empty() ? nullptr : node::impl::build(utf8)) {}

rope::rope(const rope& other) : root_(other.root_ == nullptr ? nullptr : node::impl::clone(other.root_)) {}

rope::rope(rope&& other) noexcept : root_(std::exchange(other.root_, nullptr)) {}

rope& rope::operator=(const rope& other) {
  if (this != &other) {
    rope copy(other);  // copy first: on bad_alloc *this is unchanged
    std::swap(root_, copy.root_);
  }
  return *this;
}

rope& rope::operator=(rope&& other) noexcept {
  if (this != &other) {
    clear();
    root_ = std::exchange(other.root_, nullptr);
  }
  return *this;
}

rope::~rope() {
  clear();
}

std::size_t rope::size() const noexcept {
  return root_ == nullptr ? 0 : node::impl::totals(root_).code_points;
}

std::size_t rope::size_bytes() const noexcept {
  return root_ == nullptr ? 0 : node::impl::totals(root_).bytes;
}

void rope::insert(std::size_t pos, std::string_view utf8, std::size_t code_points) {
  if (utf8.empty()) return;
  if (root_ == nullptr) {
    root_ = node::impl::build(utf8);
    return;
  }
  node::impl::insert(*this, pos, utf8, code_points);
}

void rope::insert(std::size_t pos, std::string_view utf8) {
  insert(pos, utf8, unicode::count_code_points(utf8));
}

void rope::erase(std::size_t pos, std::size_t count) {
  const std::size_t length = size();
  if (pos >= length || count == 0) return;
  count = std::min(count, length - pos);
  if (count == length) {
    clear();
    return;
  }
  node::impl::erase(root_, pos, count);
  // The root is exempt from the fill rules but must not be a chain of single children.
  while (!root_->is_leaf_ && node::impl::as_inner(root_)->count_ == 1) {
    node::inner* old = node::impl::as_inner(root_);
    root_ = old->child_[0];
    delete old;
  }
}

void rope::clear() noexcept {
  if (root_ != nullptr) node::impl::destroy(root_);
  root_ = nullptr;
}

std::string rope::substr(std::size_t pos, std::size_t count) const {
  std::string out;
  const std::size_t length = size();
  if (pos >= length || count == 0) return out;
  count = std::min(count, length - pos);
  out.reserve(node::impl::byte_index(root_, pos + count) - node::impl::byte_index(root_, pos));
  auto append = [&out](std::string_view chunk) { out.append(chunk); };
  node::impl::visit_range(root_, pos, count, append);
  return out;
}

std::string rope::to_string() const {
  std::string out;
  out.reserve(size_bytes());
  for_each_chunk([&out](std::string_view chunk) { out.append(chunk); });
  return out;
}

void rope::for_each_chunk_impl(chunk_fn fn, void* context) const {
  if (root_ != nullptr) node::impl::visit_all(root_, fn, context);
}

bool rope::check_invariants() const {
  if (root_ == nullptr) return true;
  std::size_t height = 0;
  std::size_t bytes = 0;
  std::size_t code_points = 0;
  return node::impl::check(root_, true, height, bytes, code_points);
}

bool operator==(const rope& a, std::string_view b) {
  if (a.size_bytes() != b.size()) return false;
  std::size_t offset = 0;
  bool equal = true;
  a.for_each_chunk([&](std::string_view chunk) {
    if (equal) equal = chunk == std::string_view(b.data() + offset, chunk.size());
    offset += chunk.size();
  });
  return equal;
}

}  // namespace otsync::ot
