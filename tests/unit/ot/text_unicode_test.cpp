#include "otsync/ot/text_unicode.hpp"

#include <gtest/gtest.h>

namespace otsync::ot {
namespace {

using C = component;

op make(std::initializer_list<component> components) {
  return op(components);
}

std::string apply_ok(std::string_view doc, const op& o) {
  auto r = ot::apply(doc, o);
  EXPECT_TRUE(r.has_value()) << r.error().message();
  return r ? *r : std::string();
}

TEST(Check, AcceptsCanonicalOps) {
  EXPECT_FALSE(check({}));
  EXPECT_FALSE(check(make({C::skip(2), C::insert("hi"), C::erase(3)})));
  EXPECT_FALSE(check(make({C::erase("abc"), C::insert("x"), C::insert("y")})));  // adjacent inserts pass, as JS
  EXPECT_FALSE(check(make({C::erase(1), C::erase("b")})));                       // adjacent deletes pass, as JS
}

TEST(Check, RejectsEverythingCheckOpRejects) {
  EXPECT_EQ(check(make({C::skip(0), C::insert("x")})), errc::non_positive_skip);
  EXPECT_EQ(check(make({C::insert("")})), errc::empty_insert);
  EXPECT_EQ(check(make({C::erase(0)})), errc::empty_delete);
  EXPECT_EQ(check(make({C::erase(std::string())})), errc::empty_delete);
  EXPECT_EQ(check(make({C::skip(1), C::skip(2), C::insert("x")})), errc::adjacent_skips);
  EXPECT_EQ(check(make({C::insert("x"), C::skip(2)})), errc::trailing_skip);
  EXPECT_EQ(check(make({C::skip(2)})), errc::trailing_skip);
}

TEST(Check, FirstBadComponentDecides) {
  EXPECT_EQ(check(make({C::skip(1), C::skip(1), C::insert("")})), errc::adjacent_skips);
  EXPECT_EQ(check(make({C::insert(""), C::skip(1), C::skip(1)})), errc::empty_insert);
}

TEST(Check, StricterThanJs) {
  EXPECT_EQ(check(make({C::insert("\xED\xA0\x80")})), errc::lone_surrogate);
  EXPECT_EQ(check(make({C::insert("\xC3")})), errc::invalid_utf8);
  EXPECT_EQ(check(make({C::erase(std::string("\xFF"))})), errc::invalid_utf8);
  EXPECT_EQ(check(make({C::skip(max_length + 1), C::insert("x")})), errc::length_out_of_range);
  EXPECT_EQ(check(make({C::skip(max_length), C::insert("x")})), errc::length_out_of_range);  // total
  EXPECT_EQ(check(make({C::insert("ab", 5)})), errc::invalid_utf8);  // length disagrees with text
}

TEST(Check, ErrorsCarryJsMessages) {
  EXPECT_EQ(make_error_code(errc::adjacent_skips).message(), "Adjacent skip components should be combined");
  EXPECT_EQ(make_error_code(errc::op_too_long).message(), "The op is too long for this document");
}

TEST(Normalize, MatchesTheSpecExample) {
  const op raw = make({C::skip(0), C::insert("a"), C::skip(0), C::insert(""), C::erase(0), C::skip(2), C::skip(3)});
  EXPECT_EQ(normalize(raw), make({C::insert("a")}));
}

TEST(Normalize, MergesDeletesKeepingTextOnlyWhenBothHaveIt) {
  EXPECT_EQ(normalize(make({C::erase("ab"), C::erase("c")})), make({C::erase("abc")}));
  EXPECT_EQ(normalize(make({C::erase("ab"), C::erase(1)})), make({C::erase(3)}));
  EXPECT_EQ(normalize(make({C::skip(1), C::skip(2), C::insert("x"), C::insert("😀")})),
            make({C::skip(3), C::insert("x😀")}));
}

TEST(Apply, CountsCodePoints) {
  EXPECT_EQ(apply_ok("héllo 😀", make({C::skip(7), C::insert("!")})), "héllo 😀!");
  EXPECT_EQ(apply_ok("😀😀", make({C::skip(1), C::erase(1), C::insert("é")})), "😀é");
}

TEST(Apply, CutsShortADeletePastTheEnd) {
  EXPECT_EQ(apply_ok("abc", make({C::skip(2), C::erase(5)})), "ab");
  EXPECT_EQ(apply_ok("abc", make({C::erase(9), C::insert("x")})), "x");
}

TEST(Apply, SkipPastTheEndFailsAndLeavesTheDocument) {
  rope doc("abc");
  EXPECT_EQ(ot::apply(doc, make({C::insert("x"), C::skip(4), C::insert("y")})), errc::op_too_long);
  EXPECT_EQ(doc.to_string(), "abc");
  // After a cut-short delete nothing is left to skip over.
  EXPECT_EQ(ot::apply(doc, make({C::erase(5), C::skip(1), C::insert("y")})), errc::op_too_long);
  EXPECT_EQ(ot::apply(doc, make({C::skip(1), C::skip(1), C::insert("y")})), errc::adjacent_skips);
  EXPECT_EQ(doc.to_string(), "abc");
}

TEST(Apply, DeleteTextIsNotCheckedAgainstTheDocument) {
  EXPECT_EQ(apply_ok("abc", make({C::erase("zz")})), "c");
}

TEST(Transform, TieBreakFollowsSide) {
  const op a = make({C::insert("a")});
  const op b = make({C::insert("b")});
  EXPECT_EQ(*transform(a, b, side::left), make({C::insert("a")}));
  EXPECT_EQ(*transform(a, b, side::right), make({C::skip(1), C::insert("a")}));
}

TEST(Transform, TieBreakOnlyWhenTheNextComponentInserts) {
  const op a = make({C::erase(1), C::insert("a")});
  EXPECT_EQ(*transform(a, make({C::insert("b")}), side::left), make({C::skip(1), C::erase(1), C::insert("a")}));
}

TEST(Transform, DeletesOfTheSameTextAreAbsorbed) {
  const op a = make({C::skip(1), C::erase(3)});
  const op b = make({C::skip(2), C::erase(3)});
  EXPECT_EQ(*transform(a, b, side::left), make({C::skip(1), C::erase(1)}));
  EXPECT_EQ(*transform(b, a, side::left), make({C::skip(1), C::erase(1)}));
}

TEST(Transform, ChecksBothOps) {
  const op bad = make({C::skip(1)});
  EXPECT_EQ(transform(bad, {}, side::left).error(), errc::trailing_skip);
  EXPECT_EQ(transform({}, bad, side::left).error(), errc::trailing_skip);
}

TEST(Compose, InsertThenDeleteCancels) {
  EXPECT_EQ(*compose(make({C::insert("abc")}), make({C::erase("abc")})), op{});
  EXPECT_EQ(*compose(make({C::insert("a😀c")}), make({C::skip(1), C::erase(1)})), make({C::insert("ac")}));
}

TEST(Compose, DeletesOfKeptTextTakeTheirRecordedText) {
  EXPECT_EQ(*compose(make({C::skip(1), C::erase("X")}), make({C::erase("ab")})), make({C::erase("aXb")}));
}

TEST(Compose, ChecksBothOps) {
  EXPECT_EQ(compose(make({C::insert("")}), {}).error(), errc::empty_insert);
}

TEST(TransformPosition, MatchesTheSpecExamples) {
  EXPECT_EQ(transform_position(3, make({C::skip(1), C::insert("😀😀")})), 5U);
  EXPECT_EQ(transform_position(1, make({C::skip(1), C::insert("xy")})), 1U);
  EXPECT_EQ(transform_position(2, make({C::skip(1), C::erase(3)})), 1U);
  EXPECT_EQ(transform_position(0, make({C::insert("x")})), 0U);
  EXPECT_EQ(transform_selection({1, 4}, make({C::insert("ab")})), (selection{3, 6}));
}

TEST(TransformCaret, AnOwnInsertAtTheCaretCarriesIt) {
  const auto insert_at_1 = make({C::skip(1), C::insert("x😀")});
  EXPECT_EQ(transform_caret(1, insert_at_1, false), 1U);  // as transform_position
  EXPECT_EQ(transform_caret(1, insert_at_1, true), 3U);   // the author's caret follows the text
  EXPECT_EQ(transform_caret(0, make({C::insert("ab")}), true), 2U);
  EXPECT_EQ(transform_caret(0, make({C::insert("ab")}), false), 0U);
  EXPECT_EQ(transform_caret(3, insert_at_1, true), 5U);
  EXPECT_EQ(transform_caret(2, make({C::skip(2), C::erase(3)}), true), 2U);  // a delete at it: stays
  EXPECT_EQ(transform_caret(4, make({C::skip(2), C::erase(3)}), true), 2U);
  EXPECT_EQ(transform_caret(2, make({C::skip(2), C::erase(1), C::insert("yz")}), true), 4U);
  // Away from inserts at the caret, both rules are transform_position's.
  for (std::uint64_t cursor : {0U, 1U, 2U, 5U, 9U}) {
    const auto op = make({C::skip(1), C::erase(2), C::skip(3), C::insert("q")});
    if (cursor == 6) continue;
    EXPECT_EQ(transform_caret(cursor, op, true), transform_position(cursor, op)) << cursor;
  }
}

TEST(Invert, NeedsRecordedText) {
  EXPECT_EQ(invert(make({C::skip(1), C::erase(2)})).error(), errc::not_invertible);
  EXPECT_EQ(*invert(make({C::skip(1), C::erase("bc"), C::insert("X")})),
            make({C::skip(1), C::insert("bc"), C::erase("X")}));
}

TEST(Invert, MakeInvertibleReadsTheDocument) {
  const rope doc("ab😀d");
  EXPECT_EQ(make_invertible(make({C::skip(1), C::erase(2)}), doc), make({C::skip(1), C::erase("b😀")}));
  // Past the end: records what is there, or drops the delete entirely.
  EXPECT_EQ(make_invertible(make({C::skip(3), C::erase(5)}), doc), make({C::skip(3), C::erase("d")}));
  EXPECT_EQ(make_invertible(make({C::skip(4), C::erase(2)}), doc), op{});
  EXPECT_TRUE(is_invertible(make_invertible(make({C::erase(1), C::insert("x"), C::erase(1)}), doc)));
  EXPECT_EQ(strip_invertible(make({C::erase("ab"), C::insert("x")})), make({C::erase(2), C::insert("x")}));
}

TEST(Invert, UndoesAnEdit) {
  const std::string doc = "héllo wörld 😀";
  const rope text(doc);
  const op edit = make({C::skip(2), C::erase(3), C::insert("XY"), C::skip(4), C::erase(2)});
  const std::string after = apply_ok(doc, edit);
  auto undo = invert(make_invertible(edit, text));
  ASSERT_TRUE(undo.has_value());
  EXPECT_EQ(apply_ok(after, *undo), doc);
}

TEST(Builder, KeepsOpsCanonical) {
  op_builder b;
  b.skip(0).skip(2).skip(1).insert("").insert("a").insert("b").erase(0).erase_text("x").erase(1).skip(4);
  EXPECT_EQ(std::move(b).finish(), make({C::skip(3), C::insert("ab"), C::erase(2)}));
}

}  // namespace
}  // namespace otsync::ot

namespace otsync::ot {
namespace {

TEST(Validated, RememberedOnlyWhileTheOpIsUnchanged) {
  op o{C::insert("x")};
  EXPECT_FALSE(o.validated());
  EXPECT_FALSE(validate(o));
  EXPECT_TRUE(o.validated());
  o.push_back(C::skip(2));  // now has a trailing skip
  EXPECT_FALSE(o.validated());
  EXPECT_EQ(validate(o), errc::trailing_skip);
  EXPECT_FALSE(o.validated());
  EXPECT_EQ(transform(o, {}, side::left).error(), errc::trailing_skip);
}

TEST(Validated, TransformAndComposeResultsAreValidated) {
  op a{C::skip(1), C::insert("é")};
  op b{C::erase(1)};
  ASSERT_FALSE(validate(a));
  ASSERT_FALSE(validate(b));
  EXPECT_TRUE(transform(a, b, side::left)->validated());
  EXPECT_TRUE(compose(b, a)->validated());
  EXPECT_FALSE(normalize(a).validated());  // normalize takes unchecked ops
}

TEST(Validated, UncheckedBadTextIsCaughtByTransform) {
  const op bad{C::insert("\xED\xA0\x80")};
  EXPECT_EQ(transform(bad, {}, side::right).error(), errc::lone_surrogate);
  EXPECT_EQ(compose({}, bad).error(), errc::lone_surrogate);
}

}  // namespace
}  // namespace otsync::ot
