// libFuzzer target: the op codec (protocol/op_json.hpp) and the text-unicode
// OT entry points (ot/text_unicode.hpp) on hostile ops.
//
// Input: byte 0 picks the mode.
//   even: the rest is JSON text, read as an op (checked and unchecked) and as
//         a selection. An accepted op writes back to JSON that reads back
//         equal, through the DOM and through its text (op_to_json, dump and
//         json_text::append_op agree byte for byte), and applies to a
//         document of its length, on the rope as on a string.
//   odd:  the rest drives a document and three ops built component by
//         component (valid or not): a and b on the document, c on the
//         document after a. Whatever `check` accepts must then obey:
//         apply on the rope == apply on a string (the rope unchanged on an
//         error, its invariants kept); compose(a, c) == a then c; transform
//         results canonical and TP1 for both tie-breaks,
//         apply(apply(doc, a), transform(b, a, s)) ==
//         apply(apply(doc, b), transform(a, b, !s)) when a and b fit the
//         document; transform_position stays inside the new document;
//         invert(make_invertible(a)) undoes a; normalize is idempotent on
//         anything; and the codec round trip above.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "otsync/ot/rope.hpp"
#include "otsync/ot/text_unicode.hpp"
#include "otsync/ot/unicode.hpp"
#include "otsync/protocol/json_text.hpp"
#include "otsync/protocol/op_json.hpp"

namespace {

using nlohmann::json;
namespace ot = otsync::ot;
namespace protocol = otsync::protocol;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_op_codec: invariant violated: %s\n", what);
  std::abort();
}

void require(bool condition, const char* what) {
  if (!condition) fail(what);
}

// Code points the op would walk over in the document it applies to (skips
// and deletes); saturates instead of wrapping.
std::uint64_t input_length(const ot::op& o) {
  std::uint64_t total = 0;
  for (const auto& c : o) {
    if (c.is_insert()) continue;
    total = c.length() > UINT64_MAX - total ? UINT64_MAX : total + c.length();
  }
  return total;
}

std::uint64_t code_points(std::string_view text) {
  return ot::unicode::count_code_points(text);
}

// True when every `{d:"text"}` of `o` records the text it deletes from `doc`
// (what invert needs to undo it).
bool deletes_record_doc(const ot::op& o, std::string_view doc) {
  std::uint64_t position = 0;
  for (const auto& c : o) {
    if (c.is_erase() && c.has_text() && ot::unicode::substr(doc, position, c.length()) != c.text()) return false;
    if (!c.is_insert()) position += c.length();
  }
  return true;
}

// True when no sum of lengths can wrap: op_builder adds lengths in 64 bits,
// which the codec's lengths (below 2^53 each) never reach short of 2^11
// components of the largest length; beyond that normalize's results are
// undefined, as ot-text-unicode's are beyond 2^53.
bool lengths_sum_safely(const ot::op& o) {
  std::uint64_t total = 0;
  for (const auto& c : o) {
    if (c.length() > UINT64_MAX - total) return false;
    total += c.length();
  }
  return true;
}

// Every component's length, summed (saturating).
std::uint64_t total_length(const ot::op& o) {
  std::uint64_t total = 0;
  for (const auto& c : o) total = c.length() > UINT64_MAX - total ? UINT64_MAX : total + c.length();
  return total;
}

// A result of transform or compose passes `check`; the one exception is
// otsync's own total-length rule (2^53 - 1, stricter than JS), which a
// result may break when its inputs' lengths together reach it (known:
// transform([{d:2^53-1}], ["abc"]) is [3, {d:2^53-1}]).
bool result_valid(const ot::op& result, const ot::op& x, const ot::op& y) {
  const auto error = ot::check(result);
  if (!error) return true;
  const bool near_limit = total_length(x) > ot::max_length - std::min<std::uint64_t>(total_length(y), ot::max_length);
  require(near_limit && error == ot::errc::length_out_of_range, "an OT result fails check");
  return false;
}

// apply on a rope and on a string agree; returns the string result.
ot::result<std::string> apply_both(const std::string& doc, const ot::op& o) {
  auto by_string = ot::apply(doc, o);
  ot::rope r(doc);
  const auto error = ot::apply(r, o);
  require(r.check_invariants(), "the rope's invariants broke");
  if (error) {
    require(!by_string, "apply failed on the rope but not on a string");
    require(error == by_string.error(), "apply failed differently on the rope and on a string");
    require(r == doc, "a failed apply changed the rope");
    return error;
  }
  require(by_string.has_value(), "apply failed on a string but not on the rope");
  require(r == *by_string, "apply differs between the rope and a string");
  return by_string;
}

// The codec round trip of a valid op.
void check_codec(const ot::op& o) {
  const json written = protocol::op_to_json(o);
  auto back = protocol::op_from_json(written);
  require(back.has_value(), "a valid op's JSON does not read back");
  require(*back == o, "a valid op's JSON reads back differently");
  const std::string text = written.dump(-1, ' ', false, json::error_handler_t::strict);
  std::string direct;
  protocol::json_text::append_op(direct, o);
  require(direct == text, "json_text::append_op differs from nlohmann's dump");
  auto reparsed = protocol::op_from_json(json::parse(text));
  require(reparsed.has_value() && *reparsed == o, "a valid op's JSON text reads back differently");
  require(protocol::op_to_json(*reparsed) == written, "op_to_json is not stable");
}

// ---------------------------------------------------------------------------
// Mode even: JSON text.

void json_mode(std::string_view text) {
  const json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return;
  (void)protocol::selection_from_json(value);
  auto unchecked = protocol::op_from_json_unchecked(value);
  auto checked = protocol::op_from_json(value);
  if (checked) {
    require(unchecked.has_value() && *unchecked == *checked, "op_from_json and its unchecked form disagree");
  }
  if (unchecked) {
    if (lengths_sum_safely(*unchecked)) {
      const auto normal = ot::normalize(*unchecked);
      require(ot::normalize(normal) == normal, "normalize is not idempotent");
    }
    for (std::uint64_t cursor :
         {std::uint64_t{0}, std::uint64_t{3}, std::uint64_t{ot::max_length}, std::uint64_t{UINT64_MAX}}) {
      (void)ot::transform_position(cursor, *unchecked);
    }
    if (!checked) require(ot::check(*unchecked) == checked.error(), "op_from_json's error is not check's");
  }
  if (!checked) return;
  require(!ot::check(*checked), "op_from_json accepted an op check refuses");
  check_codec(*checked);
  // A document of exactly the op's length (when small): the op applies.
  const std::uint64_t length = input_length(*checked);
  if (length <= 4096) {
    const std::string doc(length, 'x');
    auto after = apply_both(doc, *checked);
    require(after.has_value(), "a valid op does not apply to a document of its length");
  }
}

// ---------------------------------------------------------------------------
// Mode odd: structured documents and ops.

const char* const pool[] = {"a", "b", " ", "\n", "\xC3\xA9", "\xE4\xB8\xAD", "\xF0\x9F\x98\x80", "\xF0\x9D\x84\x9E"};

std::string make_text(FuzzedDataProvider& in, std::size_t max_code_points, bool allow_bad) {
  std::string out;
  const auto n = in.ConsumeIntegralInRange<std::size_t>(0, max_code_points);
  for (std::size_t i = 0; i < n && in.remaining_bytes() > 0; ++i) {
    const auto pick = in.ConsumeIntegral<std::uint8_t>();
    if (allow_bad && pick >= 250) {
      // Broken UTF-8: a stray continuation byte, a lone surrogate, an overlong form, a cut sequence.
      static const char* const bad[] = {"\x80", "\xED\xA0\x80", "\xC0\xAF", "\xF0\x9F", "\xFF", "\xF4\x90\x80\x80"};
      out += bad[pick % 6];
    } else {
      out += pool[pick % std::size(pool)];
    }
  }
  return out;
}

std::uint64_t wild_length(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegral<std::uint8_t>() % 6) {
    case 0:
      return 0;
    case 1:
      return ot::max_length;
    case 2:
      return ot::max_length + 1;
    case 3:
      return UINT64_MAX;
    case 4:
      return ot::max_length / 2 + 1;
    default:
      return in.ConsumeIntegral<std::uint64_t>();
  }
}

// An op for `doc` (of `length` code points). Canonical ops go through
// op_builder (valid unless the fuzzer asks for text it refuses); raw ones
// keep whatever components the input says, for `check` to judge.
ot::op make_op(FuzzedDataProvider& in, const std::string& doc, std::uint64_t length) {
  const bool canonical = in.ConsumeBool();
  const bool allow_bad = !canonical || in.ConsumeIntegral<std::uint8_t>() >= 240;
  const auto steps = in.ConsumeIntegralInRange<std::size_t>(0, 8);
  ot::op raw;
  ot::op_builder builder;
  std::uint64_t pos = 0;
  auto add = [&](const ot::component& c) {
    if (canonical) {
      builder.append(c);
    } else {
      raw.push_back(c);
    }
  };
  for (std::size_t i = 0; i < steps && in.remaining_bytes() > 0; ++i) {
    const auto left = pos < length ? length - pos : 0;
    switch (in.ConsumeIntegral<std::uint8_t>() % 6) {
      case 0: {
        const auto n = in.ConsumeIntegralInRange<std::uint64_t>(canonical ? 1 : 0, left + 2);
        add(ot::component::skip(n));
        pos += n;
        break;
      }
      case 1:
        add(ot::component::insert(make_text(in, 6, allow_bad)));
        break;
      case 2: {
        const auto n = in.ConsumeIntegralInRange<std::uint64_t>(canonical ? 1 : 0, left + 2);
        add(ot::component::erase(n));
        pos += n;
        break;
      }
      case 3: {
        // The deleted text itself (what make_invertible records), or made-up text.
        const auto n = in.ConsumeIntegralInRange<std::uint64_t>(1, 6);
        std::string text =
            in.ConsumeBool() ? std::string(ot::unicode::substr(doc, pos, n)) : make_text(in, 4, allow_bad);
        if (text.empty()) break;
        pos += code_points(text);
        add(ot::component::erase(std::move(text)));
        break;
      }
      case 4: {
        const auto n = wild_length(in);
        add(in.ConsumeBool() ? ot::component::skip(n) : ot::component::erase(n));
        pos = n > UINT64_MAX - pos ? UINT64_MAX : pos + n;
        break;
      }
      default:
        // An insert whose declared length disagrees with its text.
        if (!canonical) raw.push_back(ot::component::insert(make_text(in, 3, allow_bad), wild_length(in)));
        break;
    }
  }
  return canonical ? std::move(builder).finish() : raw;
}

void check_transform_position(const ot::op& o, std::uint64_t doc_length, std::uint64_t new_length,
                              FuzzedDataProvider& in) {
  const bool fits = input_length(o) <= doc_length;
  for (std::uint64_t cursor : {std::uint64_t{0}, doc_length, in.ConsumeIntegralInRange<std::uint64_t>(0, doc_length)}) {
    const auto moved = ot::transform_position(cursor, o);
    if (fits) require(moved <= new_length, "transform_position left the document");
  }
  const auto sel = ot::transform_selection({in.ConsumeIntegralInRange<std::uint64_t>(0, doc_length), doc_length}, o);
  if (fits) require(sel.anchor <= new_length && sel.focus <= new_length, "transform_selection left the document");
}

// TP1 as ShareDB relies on it: the server moves a client's op P past a
// committed op S with transform(P, S, left), the client moves S past its P
// with transform(S, P, right); both must reach one document. For s = left,
// b plays P and a plays S; for s = right the other way round. P is checked
// only when it is normalized: ot-text-unicode's TP1 needs that of the op on
// the left (["a","b"] against an insert at the same place splits around it),
// and only a client that skips normalize (ShareDB's client normalizes every
// op) sends others, so only its own replica can differ. S may be anything
// a client sent.
void check_transform(const std::string& doc, std::uint64_t doc_length, const ot::op& a, const ot::op& b) {
  for (auto s : {ot::side::left, ot::side::right}) {
    const auto other = s == ot::side::left ? ot::side::right : ot::side::left;
    auto b_over_a = ot::transform(b, a, s);
    auto a_over_b = ot::transform(a, b, other);
    require(b_over_a.has_value() && a_over_b.has_value(), "transform failed on valid ops");
    for (const auto* moved : {&*b_over_a, &*a_over_b}) {
      require(ot::normalize(*moved) == *moved, "transform made a non-canonical op");
    }
    if (!result_valid(*b_over_a, a, b) || !result_valid(*a_over_b, a, b)) continue;
    if (input_length(a) > doc_length || input_length(b) > doc_length) continue;
    const auto& pending = s == ot::side::left ? b : a;
    if (ot::normalize(pending) != pending) continue;
    auto after_a = apply_both(doc, a);
    auto after_b = apply_both(doc, b);
    require(after_a.has_value() && after_b.has_value(), "an op that fits the document does not apply");
    auto left = apply_both(*after_a, *b_over_a);
    auto right = apply_both(*after_b, *a_over_b);
    require(left.has_value() && right.has_value(), "a transformed op does not apply");
    require(*left == *right, "TP1: the two orders diverge");
  }
}

void structured_mode(FuzzedDataProvider& in) {
  const std::string doc = make_text(in, 48, false);
  const std::uint64_t doc_length = code_points(doc);
  const ot::op a = make_op(in, doc, doc_length);
  const ot::op b = make_op(in, doc, doc_length);

  for (const auto* o : {&a, &b}) {
    if (!lengths_sum_safely(*o)) continue;
    const auto normal = ot::normalize(*o);
    require(ot::normalize(normal) == normal, "normalize is not idempotent");
  }
  const bool a_ok = !ot::check(a);
  const bool b_ok = !ot::check(b);
  for (const auto* o : {&a, &b}) {
    auto r = apply_both(doc, *o);  // checked inside: an invalid op fails on both
    if (!ot::check(*o) && input_length(*o) <= doc_length) require(r.has_value(), "a valid op that fits does not apply");
  }
  if (!a_ok) return;
  check_codec(a);

  auto after_a = apply_both(doc, a);
  const std::uint64_t new_length = after_a ? code_points(*after_a) : 0;
  if (after_a) check_transform_position(a, doc_length, new_length, in);

  // compose(a, c) with c made on the document after a.
  if (after_a) {
    const ot::op c = make_op(in, *after_a, new_length);
    if (!ot::check(c)) {
      auto ac = ot::compose(a, c);
      require(ac.has_value(), "compose failed on valid ops");
      require(ot::normalize(*ac) == *ac, "compose made a non-canonical op");
      auto stepwise = apply_both(*after_a, c);
      if (result_valid(*ac, a, c) && stepwise) {
        auto at_once = apply_both(doc, *ac);
        require(at_once.has_value() && *at_once == *stepwise, "compose(a, c) differs from a then c");
      }
    }
  }

  // invert(make_invertible(a)) undoes a (when a's recorded deletes are the document's text).
  if (after_a && input_length(a) <= doc_length && deletes_record_doc(a, doc)) {
    const ot::op invertible = ot::make_invertible(a, ot::rope(doc));
    require(ot::is_invertible(invertible), "make_invertible left a numeric delete");
    auto same = apply_both(doc, invertible);
    require(same.has_value() && *same == *after_a, "make_invertible changed what the op does");
    auto undo = ot::invert(invertible);
    require(undo.has_value(), "invert failed on an invertible op");
    auto back = apply_both(*after_a, *undo);
    require(back.has_value() && *back == doc, "invert does not undo the op");
    require(ot::normalize(ot::strip_invertible(invertible)) == ot::normalize(ot::strip_invertible(a)),
            "strip_invertible differs after make_invertible");
  }

  if (b_ok) check_transform(doc, doc_length, a, b);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  if ((data[0] & 1U) == 0) {
    json_mode(std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
    return 0;
  }
  FuzzedDataProvider in(data + 1, size - 1);
  structured_mode(in);
  return 0;
}
