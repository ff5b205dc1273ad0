using System.Text;

namespace Qwen3.Net.Generation.Constraints;

/// <summary>
/// Compiles the supported regular-expression subset of JSON Schema <c>pattern</c> into the content of a JSON string.
/// </summary>
/// <remarks>
/// Supported: literals, <c>.</c>, classes <c>[a-z_]</c> and <c>[^...]</c> (ASCII members), <c>\d \w \s</c> and their
/// negations (ASCII), escapes <c>\. \\ \n \t \r \uXXXX</c>, groups <c>( )</c> and <c>(?: )</c>, <c>|</c>, quantifiers
/// <c>* + ? {n} {n,} {n,m}</c> (lazy forms accepted), and <c>^</c>/<c>$</c> at the ends of top-level alternatives.
/// An unanchored side matches any characters there, as a regex search would. Anything else is a <see cref="SchemaException"/>.
/// </remarks>
internal sealed class PatternCompiler
{
    private const int MaxRepeat = 1000;
    private readonly string _pattern;
    private readonly string _pointer;
    private readonly AutomatonBuilder _b;
    private int _pos;

    private PatternCompiler(AutomatonBuilder b, string pattern, string pointer)
    {
        _b = b;
        _pattern = pattern;
        _pointer = pointer;
    }

    /// <summary>The string content (no quotes) matching <paramref name="pattern"/>.</summary>
    public static Fragment Compile(AutomatonBuilder b, string pattern, string pointer)
    {
        var compiler = new PatternCompiler(b, pattern, pointer);
        Node root = compiler.ParseTopLevel();
        return compiler.Build(root);
    }

    private abstract record Node;

    private sealed record CharNode(int CodePoint) : Node;

    /// <summary>A class of ASCII characters; negated classes also match every non-ASCII character unless AsciiOnly.</summary>
    private sealed record SetNode(bool[] Members, bool Negated, bool AsciiOnly, bool Dot) : Node;

    private sealed record SeqNode(List<Node> Items) : Node;

    private sealed record AltNode(List<Node> Options) : Node;

    private sealed record RepeatNode(Node Item, int Min, int Max) : Node;

    private sealed record AnyStringNode : Node;

    private SchemaException Error(string message) => new(_pointer, $"pattern '{_pattern}' {message} (see docs/structured-output.md for the supported regex subset).");

    private Node ParseTopLevel()
    {
        var options = new List<Node>();
        while (true)
        {
            bool anchoredStart = Peek('^');
            if (anchoredStart)
            {
                _pos++;
            }

            var items = ParseSequenceItems(topLevel: true, out bool anchoredEnd);
            if (!anchoredStart)
            {
                items.Insert(0, new AnyStringNode());
            }

            if (!anchoredEnd)
            {
                items.Add(new AnyStringNode());
            }

            options.Add(new SeqNode(items));
            if (_pos >= _pattern.Length)
            {
                break;
            }

            if (_pattern[_pos] == '|')
            {
                _pos++;
                continue;
            }

            throw Error($"has an unbalanced ')' at offset {_pos}");
        }

        return options.Count == 1 ? options[0] : new AltNode(options);
    }

    private bool Peek(char c) => _pos < _pattern.Length && _pattern[_pos] == c;

    private Node ParseAlternation()
    {
        var options = new List<Node> { new SeqNode(ParseSequenceItems(topLevel: false, out _)) };
        while (Peek('|'))
        {
            _pos++;
            options.Add(new SeqNode(ParseSequenceItems(topLevel: false, out _)));
        }

        return options.Count == 1 ? options[0] : new AltNode(options);
    }

    private List<Node> ParseSequenceItems(bool topLevel, out bool anchoredEnd)
    {
        anchoredEnd = false;
        var items = new List<Node>();
        while (_pos < _pattern.Length && _pattern[_pos] != '|' && _pattern[_pos] != ')')
        {
            char c = _pattern[_pos];
            if (c == '$')
            {
                _pos++;
                bool atEnd = _pos >= _pattern.Length || _pattern[_pos] == '|';
                if (!topLevel || !atEnd)
                {
                    throw Error("uses '$' other than at the end of a top-level alternative");
                }

                anchoredEnd = true;
                break;
            }

            if (c == '^')
            {
                throw Error("uses '^' other than at the start of a top-level alternative");
            }

            Node atom = ParseAtom();
            items.Add(ParseQuantifier(atom));
        }

        return items;
    }

    private Node ParseAtom()
    {
        char c = _pattern[_pos++];
        switch (c)
        {
            case '(':
                if (Peek('?'))
                {
                    if (_pos + 1 < _pattern.Length && _pattern[_pos + 1] == ':')
                    {
                        _pos += 2;
                    }
                    else
                    {
                        throw Error("uses a lookaround or named group, which is not supported");
                    }
                }

                Node inner = ParseAlternation();
                if (!Peek(')'))
                {
                    throw Error("has an unclosed '('");
                }

                _pos++;
                return inner;
            case '[':
                return ParseClass();
            case '.':
                var newlines = new bool[128];
                newlines['\n'] = true;
                newlines['\r'] = true;
                return new SetNode(newlines, Negated: true, AsciiOnly: false, Dot: true);
            case '\\':
                return ParseEscape() is { } node ? node : throw Error("has an unsupported escape");
            case '*' or '+' or '?' or '{':
                throw Error($"has a quantifier '{c}' with nothing to repeat at offset {_pos - 1}");
            default:
                if (char.IsHighSurrogate(c) && _pos < _pattern.Length)
                {
                    return new CharNode(char.ConvertToUtf32(c, _pattern[_pos++]));
                }

                return new CharNode(c);
        }
    }

    private Node ParseQuantifier(Node atom)
    {
        if (_pos >= _pattern.Length)
        {
            return atom;
        }

        int min;
        int max;
        switch (_pattern[_pos])
        {
            case '*':
                (min, max) = (0, -1);
                _pos++;
                break;
            case '+':
                (min, max) = (1, -1);
                _pos++;
                break;
            case '?':
                (min, max) = (0, 1);
                _pos++;
                break;
            case '{':
                int close = _pattern.IndexOf('}', _pos);
                if (close < 0)
                {
                    throw Error("has an unclosed '{'");
                }

                string body = _pattern[(_pos + 1)..close];
                string[] bounds = body.Split(',');
                if (bounds.Length > 2 || !int.TryParse(bounds[0], out min) || min < 0)
                {
                    throw Error($"has an invalid quantifier '{{{body}}}'");
                }

                if (bounds.Length == 1)
                {
                    max = min;
                }
                else if (bounds[1].Length == 0)
                {
                    max = -1;
                }
                else if (!int.TryParse(bounds[1], out max) || max < min)
                {
                    throw Error($"has an invalid quantifier '{{{body}}}'");
                }

                if (min > MaxRepeat || max > MaxRepeat)
                {
                    throw Error($"repeats more than {MaxRepeat} times");
                }

                _pos = close + 1;
                break;
            default:
                return atom;
        }

        if (Peek('?'))
        {
            _pos++; // Lazy quantifiers match the same language.
        }

        if (_pos < _pattern.Length && _pattern[_pos] is '*' or '+' or '{' || Peek('?'))
        {
            throw Error("has a possessive or stacked quantifier, which is not supported");
        }

        return new RepeatNode(atom, min, max);
    }

    private Node? ParseEscape()
    {
        if (_pos >= _pattern.Length)
        {
            throw Error("ends with a lone backslash");
        }

        char c = _pattern[_pos++];
        static bool[] Set(string chars)
        {
            var set = new bool[128];
            foreach (char ch in chars)
            {
                set[ch] = true;
            }

            return set;
        }

        const string Digits = "0123456789";
        const string Word = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_";
        const string Space = " \t\n\r\f\v";
        switch (c)
        {
            case 'd': return new SetNode(Set(Digits), false, true, false);
            case 'w': return new SetNode(Set(Word), false, true, false);
            case 's': return new SetNode(Set(Space), false, true, false);

            // Negations stay ASCII because .NET's \d, \w and \s also match non-ASCII digits, letters and spaces.
            case 'D': return new SetNode(Set(Digits), true, true, false);
            case 'W': return new SetNode(Set(Word), true, true, false);
            case 'S': return new SetNode(Set(Space), true, true, false);
            case 'n': return new CharNode('\n');
            case 't': return new CharNode('\t');
            case 'r': return new CharNode('\r');
            case 'f': return new CharNode('\f');
            case 'v': return new CharNode('\v');
            case 'u':
                if (_pos + 4 <= _pattern.Length && int.TryParse(_pattern.AsSpan(_pos, 4), System.Globalization.NumberStyles.HexNumber, null, out int code) && code is < 0xD800 or > 0xDFFF)
                {
                    _pos += 4;
                    return new CharNode(code);
                }

                throw Error("has an invalid \\u escape");
            default:
                if (!char.IsAsciiLetterOrDigit(c))
                {
                    return new CharNode(c);
                }

                throw Error($"uses the escape '\\{c}', which is not supported");
        }
    }

    private SetNode ParseClass()
    {
        bool negated = Peek('^');
        if (negated)
        {
            _pos++;
        }

        var members = new bool[128];
        bool first = true;
        while (true)
        {
            if (_pos >= _pattern.Length)
            {
                throw Error("has an unclosed '['");
            }

            char c = _pattern[_pos];
            if (c == ']' && !first)
            {
                _pos++;
                break;
            }

            first = false;
            _pos++;
            int lo;
            if (c == '\\')
            {
                Node? escaped = ParseEscape();
                if (escaped is SetNode set)
                {
                    if (set.Negated)
                    {
                        throw Error("uses a negated shorthand (\\D, \\W, \\S) inside a class, which is not supported");
                    }

                    for (int i = 0; i < 128; i++)
                    {
                        members[i] |= set.Members[i];
                    }

                    continue;
                }

                lo = ((CharNode)escaped!).CodePoint;
            }
            else
            {
                lo = c;
            }

            int hi = lo;
            if (Peek('-') && _pos + 1 < _pattern.Length && _pattern[_pos + 1] != ']')
            {
                _pos++;
                char h = _pattern[_pos++];
                hi = h == '\\' ? ((ParseEscape() as CharNode) ?? throw Error("has a class range ending in a shorthand")).CodePoint : h;
                if (hi < lo)
                {
                    throw Error($"has a reversed class range at offset {_pos}");
                }
            }

            if (hi >= 128)
            {
                throw Error("has a non-ASCII character in a class, which is not supported");
            }

            for (int i = lo; i <= hi; i++)
            {
                members[i] = true;
            }
        }

        return new SetNode(members, negated, AsciiOnly: false, Dot: false);
    }

    private Fragment Build(Node node)
    {
        switch (node)
        {
            case CharNode ch:
                return _b.Literal(JsonLexicon.EncodeChar(ch.CodePoint));
            case AnyStringNode:
                return _b.Star(JsonLexicon.StringChar(_b));
            case SeqNode seq:
                var parts = new Fragment[seq.Items.Count];
                for (int i = 0; i < parts.Length; i++)
                {
                    parts[i] = Build(seq.Items[i]);
                }

                return _b.Seq(parts);
            case AltNode alt:
                var options = new List<Fragment>(alt.Options.Count);
                foreach (Node option in alt.Options)
                {
                    options.Add(Build(option));
                }

                return _b.Alt(options);
            case RepeatNode repeat:
                return _b.Repeat(() => Build(repeat.Item), repeat.Min, repeat.Max);
            case SetNode set when set.Negated:
                return JsonLexicon.StringChar(_b, set.Members, excludeLineSeparators: set.Dot, asciiOnly: set.AsciiOnly);
            case SetNode set:
                // Plain printable members share one byte class; the rest need escapes and get their own branch.
                var ranges = new List<(byte Lo, byte Hi)>();
                var members = new List<Fragment>();
                for (int c = 0; c < 128; c++)
                {
                    if (!set.Members[c])
                    {
                        continue;
                    }

                    if (c < 0x20 || c == '"' || c == '\\')
                    {
                        members.Add(_b.Literal(JsonLexicon.EncodeChar(c)));
                    }
                    else if (ranges.Count > 0 && ranges[^1].Hi == c - 1)
                    {
                        ranges[^1] = (ranges[^1].Lo, (byte)c);
                    }
                    else
                    {
                        ranges.Add(((byte)c, (byte)c));
                    }
                }

                if (ranges.Count > 0)
                {
                    members.Add(_b.Class(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(ranges)));
                }

                return _b.Alt(members);
            default:
                throw new InvalidOperationException(node.GetType().Name);
        }
    }
}
