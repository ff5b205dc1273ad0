using System.Globalization;
using System.Text;

namespace Qwen3.Net;

/// <summary>
/// Splits text into the pieces that Qwen's Split pre-tokenizer produces with the pattern
/// <c>(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+</c>.
/// </summary>
/// <remarks>
/// Hand-written rather than a .NET <see cref="System.Text.RegularExpressions.Regex"/> because .NET regexes see UTF-16 code
/// units: a supplementary-plane letter such as 𝐇 is two surrogates, neither of which is <c>\p{L}</c>, so the regex would
/// cut it apart from its word. Here every class test is done on whole code points, and <c>\s</c> is Unicode White_Space,
/// which is what Oniguruma (used by Hugging Face tokenizers) means by <c>\s</c>.
/// The alternatives are tried in pattern order at each position, with the backtracking outcomes worked out by hand,
/// so the result equals the regex's leftmost-first matches. Every position matches some alternative, so the pieces
/// tile the input with no gaps.
/// </remarks>
internal static class Qwen3PreTokenizer
{
    private enum CharClass : byte
    {
        Letter,
        Number,
        WhiteSpace,
        Other,
    }

    /// <summary>Enumerates the pieces of <paramref name="text"/> as ranges of UTF-16 indexes, without allocating.</summary>
    public static PieceEnumerator Split(ReadOnlySpan<char> text) => new(text);

    /// <summary>Returns the exclusive end (UTF-16 index) of the piece that starts at <paramref name="start"/>.</summary>
    public static int PieceEnd(ReadOnlySpan<char> text, int start)
    {
        CharClass first = Classify(text, start, out int firstLength);

        int contractionEnd = ContractionEnd(text, start);
        if (contractionEnd > 0)
        {
            return contractionEnd;
        }

        // [^\r\n\p{L}\p{N}]?\p{L}+
        if (first == CharClass.Letter)
        {
            return LetterRunEnd(text, start + firstLength);
        }

        if (first != CharClass.Number && text[start] is not '\r' and not '\n')
        {
            int next = start + firstLength;
            if (next < text.Length && Classify(text, next, out int nextLength) == CharClass.Letter)
            {
                return LetterRunEnd(text, next + nextLength);
            }
        }

        // \p{N}
        if (first == CharClass.Number)
        {
            return start + firstLength;
        }

        // " ?[^\s\p{L}\p{N}]+[\r\n]*"
        if (text[start] == ' ' && start + 1 < text.Length && Classify(text, start + 1, out _) == CharClass.Other)
        {
            return LineBreakRunEnd(text, OtherRunEnd(text, start + 1));
        }

        if (first == CharClass.Other)
        {
            return LineBreakRunEnd(text, OtherRunEnd(text, start));
        }

        // Only white space is left. White_Space code points are all in the BMP, so the run is walked by char.
        int runEnd = start;
        int lastLineBreak = -1;
        while (runEnd < text.Length && IsWhiteSpace(text[runEnd]))
        {
            if (text[runEnd] is '\r' or '\n')
            {
                lastLineBreak = runEnd;
            }

            runEnd++;
        }

        // \s*[\r\n]+ : \s* gives back characters until [\r\n]+ can match, which first happens at the run's last line break.
        if (lastLineBreak >= 0)
        {
            return lastLineBreak + 1;
        }

        // \s+(?!\S) : the whole run if it reaches the end, otherwise all but its last character (which must stay behind
        // so that the next piece, e.g. " word", keeps its leading space).
        if (runEnd == text.Length)
        {
            return runEnd;
        }

        if (runEnd - start >= 2)
        {
            return runEnd - 1;
        }

        // \s+
        return runEnd;
    }

    private static int ContractionEnd(ReadOnlySpan<char> text, int start)
    {
        if (text[start] != '\'' || start + 1 >= text.Length)
        {
            return 0;
        }

        char second = text[start + 1];

        // Case-insensitive matching uses Unicode simple case folding, under which U+017F LATIN SMALL LETTER LONG S folds to 's'.
        if (second is 's' or 'S' or 't' or 'T' or 'm' or 'M' or 'd' or 'D' or '\u017F')
        {
            return start + 2;
        }

        if (start + 2 < text.Length)
        {
            char third = text[start + 2];
            if (((second is 'r' or 'R' or 'v' or 'V') && third is 'e' or 'E') || ((second is 'l' or 'L') && third is 'l' or 'L'))
            {
                return start + 3;
            }
        }

        return 0;
    }

    private static int LetterRunEnd(ReadOnlySpan<char> text, int position)
    {
        while (position < text.Length && Classify(text, position, out int length) == CharClass.Letter)
        {
            position += length;
        }

        return position;
    }

    private static int OtherRunEnd(ReadOnlySpan<char> text, int position)
    {
        while (position < text.Length && Classify(text, position, out int length) == CharClass.Other)
        {
            position += length;
        }

        return position;
    }

    private static int LineBreakRunEnd(ReadOnlySpan<char> text, int position)
    {
        while (position < text.Length && text[position] is '\r' or '\n')
        {
            position++;
        }

        return position;
    }

    private static CharClass Classify(ReadOnlySpan<char> text, int position, out int length)
    {
        char c = text[position];
        if (c < 0x80)
        {
            length = 1;
            if ((uint)((c | 0x20) - 'a') <= 'z' - 'a')
            {
                return CharClass.Letter;
            }

            if ((uint)(c - '0') <= 9)
            {
                return CharClass.Number;
            }

            return c is ' ' or (>= '\t' and <= '\r') ? CharClass.WhiteSpace : CharClass.Other;
        }

        // A lone surrogate decodes to U+FFFD (a symbol), the same thing a UTF-8 round trip would turn it into.
        Rune.DecodeFromUtf16(text[position..], out Rune rune, out length);
        if (IsWhiteSpace(c))
        {
            return CharClass.WhiteSpace;
        }

        return Rune.GetUnicodeCategory(rune) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => CharClass.Letter,
            UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => CharClass.Number,
            _ => CharClass.Other,
        };
    }

    /// <summary>
    /// Unicode White_Space, spelled out so the split does not depend on the runtime's Unicode tables
    /// (U+180E, for one, left the space separators in Unicode 6.3). Every member is in the BMP.
    /// </summary>
    private static bool IsWhiteSpace(char c) => c switch
    {
        ' ' or (>= '\t' and <= '\r') or '\u0085' or '\u00A0' or '\u1680' or (>= '\u2000' and <= '\u200A')
            or '\u2028' or '\u2029' or '\u202F' or '\u205F' or '\u3000' => true,
        _ => false,
    };

    /// <summary>Allocation-free enumerator over the pieces of a text; usable in <c>foreach</c>.</summary>
    internal ref struct PieceEnumerator
    {
        private readonly ReadOnlySpan<char> _text;
        private int _end;

        internal PieceEnumerator(ReadOnlySpan<char> text)
        {
            _text = text;
            _end = 0;
            Current = default;
        }

        /// <summary>The current piece as a range of UTF-16 indexes into the text.</summary>
        public Range Current { get; private set; }

        /// <summary>Returns this enumerator so the type can be used directly in <c>foreach</c>.</summary>
        public readonly PieceEnumerator GetEnumerator() => this;

        /// <summary>Advances to the next piece.</summary>
        public bool MoveNext()
        {
            if (_end >= _text.Length)
            {
                return false;
            }

            int start = _end;
            _end = PieceEnd(_text, start);
            Current = new Range(start, _end);
            return true;
        }
    }
}
