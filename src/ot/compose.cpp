#include "op_reader.hpp"
#include "otsync/ot/text_unicode.hpp"
#include "validated_access.hpp"

namespace otsync::ot {

// A literal port of ot-text-unicode's compose: walk `second` over the output
// of `first`, taking `first` in pieces that never split one of its deletes.
result<op> compose(const op& first, const op& second) {
  if (auto error = detail::checked(first)) return error;
  if (auto error = detail::checked(second)) return error;
  op_builder out(first.size() + second.size());
  detail::op_reader reader(first);
  for (const component& c : second) {
    switch (c.kind()) {
      case component_kind::skip:
        for (std::uint64_t length = c.length(); length > 0;) {
          const component_view piece = reader.take(length, detail::indivisible::erase);
          out.append(piece);
          if (piece.kind != component_kind::erase) length -= piece.length;
        }
        break;
      case component_kind::insert:
        out.append(c);
        break;
      case component_kind::erase: {
        const std::uint64_t length = c.length();
        std::uint64_t offset = 0;          // code points of `c` consumed
        std::string_view text = c.text();  // the rest of c's recorded text
        while (offset < length) {
          const component_view piece = reader.take(length - offset, detail::indivisible::erase);
          switch (piece.kind) {
            case component_kind::skip:
              // Deleting text that `first` kept: the delete lands in the result.
              if (c.has_text()) {
                const std::size_t bytes = unicode::byte_offset(text, piece.length);
                out.erase_text(text.substr(0, bytes), piece.length);
                text.remove_prefix(bytes);
              } else {
                out.erase(piece.length);
              }
              offset += piece.length;
              break;
            case component_kind::insert:
              // Deleting text that `first` inserted: both vanish.
              if (c.has_text()) text.remove_prefix(unicode::byte_offset(text, piece.length));
              offset += piece.length;
              break;
            case component_kind::erase:
              out.append(piece);
              break;
          }
        }
        break;
      }
    }
  }
  while (const auto piece = reader.take_all()) out.append(*piece);
  return detail::validated_access::finish(std::move(out));
}

}  // namespace otsync::ot
