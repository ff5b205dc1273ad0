using System.Globalization;
using System.Text;

namespace Qwen3.Net.Chat.Jinja;

/// <summary>Python <c>str</c> behaviour that differs from .NET strings: whitespace set, strip/split rules, code points.</summary>
internal static class PyText
{
    /// <summary>Python's <c>str.isspace</c>; unlike .NET it also counts the ASCII separators U+001C..U+001F.</summary>
    public static bool IsWhiteSpace(char c) => char.IsWhiteSpace(c) || c is >= '\x1c' and <= '\x1f';

    public static string Strip(string s, string? chars) => RStrip(LStrip(s, chars), chars);

    public static string LStrip(string s, string? chars = null)
    {
        var i = 0;
        while (i < s.Length && (chars is null ? IsWhiteSpace(s[i]) : chars.Contains(s[i], StringComparison.Ordinal)))
        {
            i++;
        }

        return s[i..];
    }

    public static string RStrip(string s, string? chars = null)
    {
        var i = s.Length;
        while (i > 0 && (chars is null ? IsWhiteSpace(s[i - 1]) : chars.Contains(s[i - 1], StringComparison.Ordinal)))
        {
            i--;
        }

        return s[..i];
    }

    /// <summary>Python <c>str.split(sep, maxsplit)</c>, including the whitespace-run mode when <paramref name="separator"/> is null.</summary>
    public static List<object?> Split(string s, string? separator, long maxSplit)
    {
        var parts = new List<object?>();
        if (separator is null)
        {
            var i = 0;
            while (true)
            {
                while (i < s.Length && IsWhiteSpace(s[i]))
                {
                    i++;
                }

                if (i >= s.Length)
                {
                    break;
                }

                if (maxSplit >= 0 && parts.Count == maxSplit)
                {
                    parts.Add(RStrip(s[i..]));
                    break;
                }

                var start = i;
                while (i < s.Length && !IsWhiteSpace(s[i]))
                {
                    i++;
                }

                parts.Add(s[start..i]);
            }

            return parts;
        }

        if (separator.Length == 0)
        {
            throw new JinjaRuntimeException("ValueError: empty separator");
        }

        var from = 0;
        while (maxSplit < 0 || parts.Count < maxSplit)
        {
            var at = s.IndexOf(separator, from, StringComparison.Ordinal);
            if (at < 0)
            {
                break;
            }

            parts.Add(s[from..at]);
            from = at + separator.Length;
        }

        parts.Add(s[from..]);
        return parts;
    }

    public static bool HasSurrogates(string s) => s.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') >= 0;

    /// <summary>Python indexes strings by code point; .NET by UTF-16 unit. Only differs when surrogates are present.</summary>
    public static string[] CodePoints(string s)
    {
        if (!HasSurrogates(s))
        {
            var chars = new string[s.Length];
            for (var i = 0; i < s.Length; i++)
            {
                chars[i] = s[i].ToString();
            }

            return chars;
        }

        var list = new List<string>(s.Length);
        for (var i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                list.Add(s.Substring(i, 2));
                i++;
            }
            else
            {
                list.Add(s[i].ToString());
            }
        }

        return [.. list];
    }

    public static int Length(string s) => HasSurrogates(s) ? CodePoints(s).Length : s.Length;

    /// <summary>Compares by code point, as Python does, rather than by UTF-16 unit.</summary>
    public static int CompareCodePoints(string a, string b)
    {
        if (!HasSurrogates(a) && !HasSurrogates(b))
        {
            return Math.Sign(string.CompareOrdinal(a, b));
        }

        var ea = a.EnumerateRunes();
        var eb = b.EnumerateRunes();
        while (true)
        {
            var hasA = ea.MoveNext();
            var hasB = eb.MoveNext();
            if (!hasA || !hasB)
            {
                return hasA ? 1 : hasB ? -1 : 0;
            }

            var c = ea.Current.Value.CompareTo(eb.Current.Value);
            if (c != 0)
            {
                return Math.Sign(c);
            }
        }
    }

    /// <summary>Python's <c>repr(float)</c>: shortest round-trip digits, exponent form when decpt &lt;= -4 or &gt; 16.</summary>
    public static string FloatRepr(double d)
    {
        if (double.IsNaN(d))
        {
            return "nan";
        }

        if (double.IsInfinity(d))
        {
            return d > 0 ? "inf" : "-inf";
        }

        if (d == 0)
        {
            return double.IsNegative(d) ? "-0.0" : "0.0";
        }

        // "R" yields the shortest round-trip digits on .NET Core 3.0+; only the layout differs from Python.
        var shortest = Math.Abs(d).ToString("R", CultureInfo.InvariantCulture);
        var exponentAt = shortest.IndexOfAny(['E', 'e']);
        var mantissa = exponentAt >= 0 ? shortest[..exponentAt] : shortest;
        var exponent = exponentAt >= 0 ? int.Parse(shortest.AsSpan(exponentAt + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture) : 0;
        var dot = mantissa.IndexOf('.');
        var intPart = dot >= 0 ? mantissa[..dot] : mantissa;
        var fracPart = dot >= 0 ? mantissa[(dot + 1)..] : "";
        var digits = (intPart + fracPart).TrimStart('0');
        var leadingZeros = (intPart + fracPart).Length - digits.Length;
        digits = digits.TrimEnd('0');
        if (digits.Length == 0)
        {
            digits = "0";
        }

        // Position of the decimal point relative to the first significant digit, as in dtoa's decpt.
        var decpt = intPart.Length + exponent - leadingZeros;
        var sb = new StringBuilder();
        if (d < 0)
        {
            sb.Append('-');
        }

        if (decpt <= -4 || decpt > 16)
        {
            sb.Append(digits[0]);
            if (digits.Length > 1)
            {
                sb.Append('.').Append(digits, 1, digits.Length - 1);
            }

            var e = decpt - 1;
            sb.Append('e').Append(e < 0 ? '-' : '+').Append(Math.Abs(e).ToString("00", CultureInfo.InvariantCulture));
        }
        else if (decpt <= 0)
        {
            sb.Append("0.").Append('0', -decpt).Append(digits);
        }
        else if (decpt >= digits.Length)
        {
            sb.Append(digits).Append('0', decpt - digits.Length).Append(".0");
        }
        else
        {
            sb.Append(digits, 0, decpt).Append('.').Append(digits, decpt, digits.Length - decpt);
        }

        return sb.ToString();
    }

    /// <summary>Python's <c>repr(str)</c>: single quotes unless the text has a single quote and no double quote.</summary>
    public static string Repr(string s)
    {
        var quote = s.Contains('\'', StringComparison.Ordinal) && !s.Contains('"', StringComparison.Ordinal) ? '"' : '\'';
        var sb = new StringBuilder(s.Length + 2);
        sb.Append(quote);
        foreach (var c in s)
        {
            switch (c)
            {
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c == quote)
                    {
                        sb.Append('\\').Append(c);
                    }
                    else if (c < 0x20 || c == 0x7f)
                    {
                        sb.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sb.Append(c);
                    }

                    break;
            }
        }

        return sb.Append(quote).ToString();
    }
}
