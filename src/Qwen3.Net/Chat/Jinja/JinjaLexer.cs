using System.Globalization;
using System.Text;

namespace Qwen3.Net.Chat.Jinja;

internal enum TokenKind
{
    Text,
    VariableBegin,
    VariableEnd,
    BlockBegin,
    BlockEnd,
    Name,
    String,
    Integer,
    Float,
    Operator,
    Eof,
}

internal readonly record struct Token(TokenKind Kind, string Value, int Line, int Column)
{
    public bool Is(TokenKind kind, string value) => Kind == kind && Value == value;

    public bool IsName(string value) => Kind == TokenKind.Name && Value == value;

    public bool IsOperator(string value) => Kind == TokenKind.Operator && Value == value;
}

/// <summary>
/// Splits template source into tokens, applying whitespace control the way Jinja2 does when configured like
/// Hugging Face transformers: <c>trim_blocks</c>, <c>lstrip_blocks</c> and no trailing newline kept.
/// </summary>
internal sealed class JinjaLexer
{
    private static readonly string[] Operators =
    [
        "//", "**", "==", "!=", "<=", ">=",
        "+", "-", "*", "/", "%", "~", "<", ">", "=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|", ";",
    ];

    private readonly string _source;
    private readonly List<int> _lineStarts = [0];
    private readonly List<Token> _tokens = [];
    private readonly bool _trimBlocks;
    private readonly bool _lstripBlocks;
    private int _pos;

    private JinjaLexer(string source, bool trimBlocks, bool lstripBlocks)
    {
        // Jinja normalizes every newline to "\n" and drops one trailing newline (keep_trailing_newline=False).
        source = source.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n');
        if (source.EndsWith('\n'))
        {
            source = source[..^1];
        }

        _source = source;
        _trimBlocks = trimBlocks;
        _lstripBlocks = lstripBlocks;
        for (var i = 0; i < source.Length; i++)
        {
            if (source[i] == '\n')
            {
                _lineStarts.Add(i + 1);
            }
        }
    }

    public static List<Token> Tokenize(string source, bool trimBlocks = true, bool lstripBlocks = true)
    {
        var lexer = new JinjaLexer(source, trimBlocks, lstripBlocks);
        lexer.Run();
        return lexer._tokens;
    }

    private (int Line, int Column) Position(int index)
    {
        var i = _lineStarts.BinarySearch(index);
        if (i < 0)
        {
            i = ~i - 1;
        }

        return (i + 1, index - _lineStarts[i] + 1);
    }

    private ChatTemplateException Error(string message, int index)
    {
        var (line, column) = Position(index);
        return new ChatTemplateException($"{message} (line {line}, column {column})", line, column);
    }

    private void Add(TokenKind kind, string value, int index)
    {
        var (line, column) = Position(index);
        _tokens.Add(new Token(kind, value, line, column));
    }

    private void Run()
    {
        // Mirrors Jinja's line_starting: lstrip_blocks also applies to a tag at the very start of a data run when the
        // previous tag's match ended with a newline (e.g. consumed by trim_blocks).
        var lineStarting = true;
        while (_pos <= _source.Length)
        {
            var open = FindTagOpen(_pos);
            if (open < 0)
            {
                if (_pos < _source.Length)
                {
                    Add(TokenKind.Text, _source[_pos..], _pos);
                }

                break;
            }

            var kind = _source[open + 1];
            var sign = open + 2 < _source.Length && (_source[open + 2] == '-' || _source[open + 2] == '+') ? _source[open + 2] : '\0';
            var text = _source[_pos..open];
            if (sign == '-')
            {
                text = PyText.RStrip(text);
            }
            else if (sign != '+' && _lstripBlocks && kind != '{')
            {
                var lineStart = text.LastIndexOf('\n') + 1;
                if ((lineStart > 0 || lineStarting) && text.AsSpan(lineStart).IndexOfAnyExcept(' ', '\t') < 0)
                {
                    text = text[..lineStart];
                }
            }

            if (text.Length > 0)
            {
                Add(TokenKind.Text, text, _pos);
            }

            var bodyStart = open + 2 + (sign != '\0' ? 1 : 0);
            int end;
            if (kind == '#')
            {
                var close = _source.IndexOf("#}", bodyStart, StringComparison.Ordinal);
                if (close < 0)
                {
                    throw Error("Missing end of comment tag", open);
                }

                var endSign = close > bodyStart && (_source[close - 1] == '-' || _source[close - 1] == '+') ? _source[close - 1] : '\0';
                end = AfterTagEnd(close + 2, endSign, blockLike: true);
            }
            else
            {
                Add(kind == '{' ? TokenKind.VariableBegin : TokenKind.BlockBegin, kind == '{' ? "{{" : "{%", open);
                end = LexExpression(bodyStart, kind == '{' ? '}' : '%');
                if (kind == '%' && TryLexRaw(end, out var rawEnd))
                {
                    end = rawEnd;
                }
            }

            lineStarting = end > 0 && _source[end - 1] == '\n';
            _pos = end;
        }

        Add(TokenKind.Eof, "", _source.Length);
    }

    private int FindTagOpen(int from)
    {
        var i = from;
        while (true)
        {
            i = _source.IndexOf('{', i);
            if (i < 0 || i + 1 >= _source.Length)
            {
                return -1;
            }

            var next = _source[i + 1];
            if (next == '{' || next == '%' || next == '#')
            {
                return i;
            }

            i++;
        }
    }

    /// <summary>Applies the whitespace control that follows a closing delimiter and returns where data resumes.</summary>
    private int AfterTagEnd(int afterDelimiter, char sign, bool blockLike)
    {
        var p = afterDelimiter;
        if (sign == '-')
        {
            while (p < _source.Length && PyText.IsWhiteSpace(_source[p]))
            {
                p++;
            }
        }
        else if (sign != '+' && blockLike && _trimBlocks && p < _source.Length && _source[p] == '\n')
        {
            p++;
        }

        return p;
    }

    /// <summary>Lexes the inside of a <c>{{ }}</c> or <c>{% %}</c> tag; returns the index just after the tag.</summary>
    private int LexExpression(int p, char closer)
    {
        var depth = 0;
        while (true)
        {
            while (p < _source.Length && PyText.IsWhiteSpace(_source[p]))
            {
                p++;
            }

            if (p >= _source.Length)
            {
                throw Error(closer == '%' ? "Unexpected end of template inside a block tag" : "Unexpected end of template inside a variable tag", p);
            }

            if (depth == 0)
            {
                var endIndex = MatchEnd(p, closer, out var endSign);
                if (endIndex >= 0)
                {
                    Add(closer == '%' ? TokenKind.BlockEnd : TokenKind.VariableEnd, closer == '%' ? "%}" : "}}", p);
                    return AfterTagEnd(endIndex, endSign, blockLike: closer == '%');
                }
            }

            var c = _source[p];
            if (c == '\'' || c == '"')
            {
                p = LexString(p);
            }
            else if (char.IsAsciiDigit(c))
            {
                p = LexNumber(p);
            }
            else if (char.IsAsciiLetter(c) || c == '_')
            {
                var start = p;
                while (p < _source.Length && (char.IsAsciiLetterOrDigit(_source[p]) || _source[p] == '_'))
                {
                    p++;
                }

                Add(TokenKind.Name, _source[start..p], start);
            }
            else
            {
                var op = Operators.FirstOrDefault(o => string.CompareOrdinal(_source, p, o, 0, o.Length) == 0)
                    ?? throw Error($"Unexpected character '{c}'", p);
                if (op is "(" or "[" or "{")
                {
                    depth++;
                }
                else if (op is ")" or "]" or "}")
                {
                    if (depth == 0)
                    {
                        throw Error($"Unexpected '{op}'", p);
                    }

                    depth--;
                }

                Add(TokenKind.Operator, op, p);
                p += op.Length;
            }
        }
    }

    private int MatchEnd(int p, char closer, out char sign)
    {
        var delimiter = closer == '%' ? "%}" : "}}";
        sign = '\0';
        if (string.CompareOrdinal(_source, p, delimiter, 0, 2) == 0)
        {
            return p + 2;
        }

        if (p >= _source.Length)
        {
            return -1;
        }

        var c = _source[p];
        if ((c == '-' || (c == '+' && closer == '%')) && string.CompareOrdinal(_source, p + 1, delimiter, 0, 2) == 0)
        {
            sign = c;
            return p + 3;
        }

        return -1;
    }

    private int LexString(int p)
    {
        var quote = _source[p];
        var start = p;
        var sb = new StringBuilder();
        p++;
        while (true)
        {
            if (p >= _source.Length)
            {
                throw Error("Unterminated string literal", start);
            }

            var c = _source[p];
            if (c == quote)
            {
                Add(TokenKind.String, sb.ToString(), start);
                return p + 1;
            }

            if (c != '\\')
            {
                sb.Append(c);
                p++;
                continue;
            }

            if (p + 1 >= _source.Length)
            {
                throw Error("Unterminated string literal", start);
            }

            // Python "unicode-escape" semantics, which Jinja applies to string literals.
            var e = _source[p + 1];
            p += 2;
            switch (e)
            {
                case 'n': sb.Append('\n'); break;
                case 't': sb.Append('\t'); break;
                case 'r': sb.Append('\r'); break;
                case '\\': sb.Append('\\'); break;
                case '\'': sb.Append('\''); break;
                case '"': sb.Append('"'); break;
                case 'a': sb.Append('\a'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'v': sb.Append('\v'); break;
                case '\n': break;
                case 'x': p = AppendHexEscape(sb, p, 2, start); break;
                case 'u': p = AppendHexEscape(sb, p, 4, start); break;
                case 'U': p = AppendHexEscape(sb, p, 8, start); break;
                case >= '0' and <= '7':
                    {
                        var value = e - '0';
                        for (var k = 0; k < 2 && p < _source.Length && _source[p] is >= '0' and <= '7'; k++, p++)
                        {
                            value = (value * 8) + (_source[p] - '0');
                        }

                        sb.Append((char)value);
                        break;
                    }

                default:
                    sb.Append('\\').Append(e);
                    break;
            }
        }
    }

    private int AppendHexEscape(StringBuilder sb, int p, int digits, int start)
    {
        if (p + digits > _source.Length ||
            !int.TryParse(_source.AsSpan(p, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var value) ||
            !Rune.IsValid(value))
        {
            throw Error("Invalid escape sequence in string literal", start);
        }

        sb.Append(new Rune(value).ToString());
        return p + digits;
    }

    private int LexNumber(int p)
    {
        var start = p;
        while (p < _source.Length && (char.IsAsciiDigit(_source[p]) || _source[p] == '_'))
        {
            p++;
        }

        var isFloat = false;
        if (p + 1 < _source.Length && _source[p] == '.' && char.IsAsciiDigit(_source[p + 1]))
        {
            isFloat = true;
            p++;
            while (p < _source.Length && (char.IsAsciiDigit(_source[p]) || _source[p] == '_'))
            {
                p++;
            }
        }

        if (p < _source.Length && (_source[p] == 'e' || _source[p] == 'E'))
        {
            var q = p + 1;
            if (q < _source.Length && (_source[q] == '+' || _source[q] == '-'))
            {
                q++;
            }

            if (q < _source.Length && char.IsAsciiDigit(_source[q]))
            {
                isFloat = true;
                p = q;
                while (p < _source.Length && char.IsAsciiDigit(_source[p]))
                {
                    p++;
                }
            }
        }

        Add(isFloat ? TokenKind.Float : TokenKind.Integer, _source[start..p].Replace("_", "", StringComparison.Ordinal), start);
        return p;
    }

    /// <summary>Handles <c>{% raw %}…{% endraw %}</c>, whose body is emitted as text without interpretation.</summary>
    private bool TryLexRaw(int afterTag, out int end)
    {
        end = afterTag;
        var n = _tokens.Count;
        if (n < 3 || !_tokens[n - 2].IsName("raw") || _tokens[n - 3].Kind != TokenKind.BlockBegin)
        {
            return false;
        }

        _tokens.RemoveRange(n - 3, 3);
        var search = afterTag;
        while (true)
        {
            var open = _source.IndexOf("{%", search, StringComparison.Ordinal);
            if (open < 0)
            {
                throw Error("Missing '{% endraw %}'", afterTag);
            }

            var p = open + 2;
            var sign = p < _source.Length && (_source[p] == '-' || _source[p] == '+') ? _source[p] : '\0';
            if (sign != '\0')
            {
                p++;
            }

            while (p < _source.Length && PyText.IsWhiteSpace(_source[p]))
            {
                p++;
            }

            if (string.CompareOrdinal(_source, p, "endraw", 0, 6) != 0)
            {
                search = open + 2;
                continue;
            }

            p += 6;
            while (p < _source.Length && PyText.IsWhiteSpace(_source[p]))
            {
                p++;
            }

            var closeIndex = MatchEnd(p, '%', out var endSign);
            if (closeIndex < 0)
            {
                throw Error("Malformed '{% endraw %}'", open);
            }

            var body = _source[afterTag..open];
            if (sign == '-')
            {
                body = PyText.RStrip(body);
            }

            if (body.Length > 0)
            {
                Add(TokenKind.Text, body, afterTag);
            }

            end = AfterTagEnd(closeIndex, endSign, blockLike: true);
            return true;
        }
    }
}
