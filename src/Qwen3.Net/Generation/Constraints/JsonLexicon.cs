using System.Text;

namespace Qwen3.Net.Generation.Constraints;

/// <summary>Byte-level fragments for JSON's lexical pieces: string characters, numbers, integer ranges.</summary>
internal static class JsonLexicon
{
    /// <summary>Longest integer part (and fraction, and exponent) a generated number may have, so a model cannot loop on digits forever.</summary>
    public const int MaxIntegerDigits = 16;

    public const int MaxFractionDigits = 16;

    public const int MaxExponentDigits = 3;

    /// <summary>
    /// One character of a JSON string's content. ASCII characters in <paramref name="excludedAscii"/> are left out; when any are
    /// excluded, escapes that could spell an excluded character are left out too.
    /// </summary>
    public static Fragment StringChar(AutomatonBuilder b, bool[]? excludedAscii = null, bool excludeLineSeparators = false, bool asciiOnly = false, bool noEscapes = false)
    {
        bool Excluded(int c) => excludedAscii != null && excludedAscii[c];
        int s = b.NewState();
        int e = b.NewState();
        bool excludesPlain = false;
        for (int c = 0x20; c <= 0x7F; c++)
        {
            excludesPlain |= c != '"' && c != '\\' && Excluded(c);
        }

        if (!excludesPlain && !excludeLineSeparators && !asciiOnly)
        {
            b.MarkCharStart(s);
        }

        for (int c = 0x20; c <= 0x7F; c++)
        {
            if (c != '"' && c != '\\' && !Excluded(c))
            {
                int start = c;
                while (c + 1 <= 0x7F && c + 1 != '"' && c + 1 != '\\' && !Excluded(c + 1))
                {
                    c++;
                }

                b.Edge(s, (byte)start, (byte)c, e);
            }
        }

        if (!noEscapes)
        {
            int esc = b.NewState();
            b.Edge(s, (byte)'\\', (byte)'\\', esc);
            foreach ((char letter, char value) in new[] { ('"', '"'), ('\\', '\\'), ('/', '/'), ('b', '\b'), ('f', '\f'), ('n', '\n'), ('r', '\r'), ('t', '\t') })
            {
                if (!Excluded(value))
                {
                    b.Edge(esc, (byte)letter, (byte)letter, e);
                }
            }

            bool anyExcluded = excludedAscii != null && Array.IndexOf(excludedAscii, true) >= 0;

            if (!anyExcluded && !asciiOnly)
            {
                // \uXXXX except lone surrogates (D800-DFFF), which System.Text.Json refuses to decode.
                int u = b.NewState();
                b.Edge(esc, (byte)'u', (byte)'u', u);
                int h1 = b.NewState();
                int h2 = b.NewState();
                int dState = b.NewState();
                AddHex(b, u, h1, exceptD: true);
                AddHex(b, h1, h2);
                b.Edge(u, (byte)'D', (byte)'D', dState);
                b.Edge(u, (byte)'d', (byte)'d', dState);
                b.Edge(dState, (byte)'0', (byte)'7', h2);
                int h3 = b.NewState();
                AddHex(b, h2, h3);
                AddHex(b, h3, e);
            }
        }

        if (!asciiOnly)
        {
            AddUtf8NonAscii(b, s, e, excludeLineSeparators);
        }

        return new Fragment(s, e);
    }

    private static void AddHex(AutomatonBuilder b, int from, int to, bool exceptD = false)
    {
        b.Edge(from, (byte)'0', (byte)'9', to);
        if (exceptD)
        {
            b.Edge(from, (byte)'A', (byte)'C', to);
            b.Edge(from, (byte)'E', (byte)'F', to);
            b.Edge(from, (byte)'a', (byte)'c', to);
            b.Edge(from, (byte)'e', (byte)'f', to);
        }
        else
        {
            b.Edge(from, (byte)'A', (byte)'F', to);
            b.Edge(from, (byte)'a', (byte)'f', to);
        }

        b.Edge(from, (byte)'0', (byte)'9', to);
    }

    /// <summary>Well-formed UTF-8 for U+0080 and up (no surrogates, no overlongs), optionally without U+2028/U+2029.</summary>
    private static void AddUtf8NonAscii(AutomatonBuilder b, int s, int e, bool excludeLineSeparators)
    {
        int cont1 = b.NewState(); // one continuation byte left
        int cont2 = b.NewState();
        int cont3 = b.NewState();
        b.Edge(cont1, 0x80, 0xBF, e);
        b.Edge(cont2, 0x80, 0xBF, cont1);
        b.Edge(cont3, 0x80, 0xBF, cont2);
        b.Edge(s, 0xC2, 0xDF, cont1);
        int e0 = b.NewState();
        b.Edge(s, 0xE0, 0xE0, e0);
        b.Edge(e0, 0xA0, 0xBF, cont1);
        if (excludeLineSeparators)
        {
            b.Edge(s, 0xE1, 0xE1, cont2);
            int e2 = b.NewState();
            b.Edge(s, 0xE2, 0xE2, e2);
            int e280 = b.NewState();
            b.Edge(e2, 0x80, 0x80, e280);
            b.Edge(e2, 0x81, 0xBF, cont1);
            b.Edge(e280, 0x80, 0xA7, e);
            b.Edge(e280, 0xAA, 0xBF, e);
            b.Edge(s, 0xE3, 0xEC, cont2);
        }
        else
        {
            b.Edge(s, 0xE1, 0xEC, cont2);
        }

        int ed = b.NewState();
        b.Edge(s, 0xED, 0xED, ed);
        b.Edge(ed, 0x80, 0x9F, cont1);
        b.Edge(s, 0xEE, 0xEF, cont2);
        int f0 = b.NewState();
        b.Edge(s, 0xF0, 0xF0, f0);
        b.Edge(f0, 0x90, 0xBF, cont2);
        b.Edge(s, 0xF1, 0xF3, cont3);
        int f4 = b.NewState();
        b.Edge(s, 0xF4, 0xF4, f4);
        b.Edge(f4, 0x80, 0x8F, cont2);
    }

    /// <summary>A JSON string whose content is <paramref name="content"/> (the quotes added here).</summary>
    public static Fragment Quoted(AutomatonBuilder b, Fragment content) => b.Seq(b.Literal("\""), content, b.Literal("\""));

    /// <summary>A JSON string of between min and max characters (max -1: unbounded).</summary>
    /// <remarks>A bounded string is one character fragment looping on itself with its characters counted (<see cref="CountedLoops"/>), so its size does not grow with the bounds.</remarks>
    public static Fragment String(AutomatonBuilder b, int minLength, int maxLength)
    {
        if (minLength == 0 && maxLength < 0)
        {
            return Quoted(b, b.Star(StringChar(b)));
        }

        Fragment open = b.Literal("\"");
        int first = b.StateCount;
        Fragment character = StringChar(b);
        b.CountLoop(first, b.StateCount, minLength, maxLength);
        b.Epsilon(open.End, character.Start);
        b.Epsilon(character.End, character.Start);
        int end = b.NewState();
        b.Edge(character.Start, (byte)'"', (byte)'"', end);
        return new Fragment(open.Start, end);
    }

    /// <summary>A JSON number with bounded digit counts.</summary>
    public static Fragment Number(AutomatonBuilder b) => b.Seq(
        Integer(b),
        b.Optional(b.Seq(b.Literal("."), b.Repeat(() => b.Range((byte)'0', (byte)'9'), 1, MaxFractionDigits))),
        b.Optional(b.Seq(b.Class([((byte)'e', (byte)'e'), ((byte)'E', (byte)'E')]), b.Optional(b.Class([((byte)'+', (byte)'+'), ((byte)'-', (byte)'-')])), b.Repeat(() => b.Range((byte)'0', (byte)'9'), 1, MaxExponentDigits))));

    /// <summary>A JSON integer: optional minus, no leading zeros, at most <see cref="MaxIntegerDigits"/> digits.</summary>
    public static Fragment Integer(AutomatonBuilder b) => b.Seq(
        b.Optional(b.Literal("-")),
        b.Alt([b.Literal("0"), b.Seq(b.Range((byte)'1', (byte)'9'), b.Repeat(() => b.Range((byte)'0', (byte)'9'), 0, MaxIntegerDigits - 1))]));

    /// <summary>Exactly the integers in [lo, hi], written without leading zeros (and "0", never "-0").</summary>
    public static Fragment IntegerRange(AutomatonBuilder b, long lo, long hi)
    {
        var parts = new List<Fragment>();
        if (lo < 0)
        {
            // Negative part: -[max(1, -hi) .. -lo].
            long nlo = hi < 0 ? -hi : 1;
            parts.Add(b.Seq(b.Literal("-"), NonNegativeRange(b, nlo, -lo)));
        }

        if (hi >= 0)
        {
            parts.Add(NonNegativeRange(b, Math.Max(lo, 0), hi));
        }

        return b.Alt(parts);
    }

    private static Fragment NonNegativeRange(AutomatonBuilder b, long lo, long hi)
    {
        var parts = new List<Fragment>();
        string loText = lo.ToString(System.Globalization.CultureInfo.InvariantCulture);
        string hiText = hi.ToString(System.Globalization.CultureInfo.InvariantCulture);
        for (int length = loText.Length; length <= hiText.Length; length++)
        {
            string from = length == loText.Length ? loText : "1" + new string('0', length - 1);
            string to = length == hiText.Length ? hiText : new string('9', length);
            parts.Add(DigitRange(b, from, to));
        }

        return b.Alt(parts);
    }

    /// <summary>Digit strings of equal length between from and to inclusive.</summary>
    private static Fragment DigitRange(AutomatonBuilder b, string from, string to)
    {
        if (from.Length == 0)
        {
            return b.Empty();
        }

        if (from.AsSpan().IndexOfAnyExcept('0') < 0 && to.AsSpan().IndexOfAnyExcept('9') < 0)
        {
            return b.Repeat(() => b.Range((byte)'0', (byte)'9'), from.Length, from.Length);
        }

        if (from[0] == to[0])
        {
            return b.Seq(b.Literal(from[..1]), DigitRange(b, from[1..], to[1..]));
        }

        int rest = from.Length - 1;
        var parts = new List<Fragment>
        {
            b.Seq(b.Literal(from[..1]), DigitRange(b, from[1..], new string('9', rest))),
            b.Seq(b.Literal(to[..1]), DigitRange(b, new string('0', rest), to[1..])),
        };
        if (to[0] - from[0] > 1)
        {
            parts.Add(b.Seq(b.Range((byte)(from[0] + 1), (byte)(to[0] - 1)), b.Repeat(() => b.Range((byte)'0', (byte)'9'), rest, rest)));
        }

        return b.Alt(parts);
    }

    /// <summary>UTF-8 bytes of one code point as it appears inside a JSON string (quote, backslash and controls escaped).</summary>
    public static byte[] EncodeChar(int codePoint) => codePoint switch
    {
        '"' => "\\\""u8.ToArray(),
        '\\' => "\\\\"u8.ToArray(),
        < 0x20 => Encoding.ASCII.GetBytes($"\\u{codePoint:x4}"),
        _ => Encoding.UTF8.GetBytes(char.ConvertFromUtf32(codePoint)),
    };
}
