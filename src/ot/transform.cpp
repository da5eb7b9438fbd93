#include "op_reader.hpp"
#include "otsync/ot/text_unicode.hpp"
#include "validated_access.hpp"

namespace otsync::ot {

// A literal port of ot-text-unicode's transform: walk `other`, taking
// `operation` in pieces that never split one of its inserts.
result<op> transform(const op& operation, const op& other, side which) {
  if (auto error = detail::checked(operation)) return error;
  if (auto error = detail::checked(other)) return error;
  op_builder out(operation.size() + other.size());
  detail::op_reader reader(operation);
  for (const component& c : other) {
    switch (c.kind()) {
      case component_kind::skip:
        for (std::uint64_t length = c.length(); length > 0;) {
          const component_view piece = reader.take(length, detail::indivisible::insert);
          out.append(piece);
          if (piece.kind != component_kind::insert) length -= piece.length;
        }
        break;
      case component_kind::insert:
        // Ties go to the left op, but only when its very next component inserts.
        if (which == side::left && reader.peek_is_insert()) out.append(*reader.take_all());
        out.skip(c.length());
        break;
      case component_kind::erase:
        for (std::uint64_t length = c.length(); length > 0;) {
          const component_view piece = reader.take(length, detail::indivisible::insert);
          if (piece.kind == component_kind::insert) {
            out.append(piece);
          } else {
            // Skipped or deleted by both: that text is gone already.
            length -= piece.length;
          }
        }
        break;
    }
  }
  while (const auto piece = reader.take_all()) out.append(*piece);
  return detail::validated_access::finish(std::move(out));
}

}  // namespace otsync::ot
