using System.Globalization;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace Qwen3.Net.Chat.Jinja;

/// <summary>Recursive-descent parser following Jinja2's grammar and operator precedence.</summary>
internal sealed class JinjaParser
{
    private static readonly HashSet<string> CompareOperators = ["==", "!=", "<", "<=", ">", ">="];

    private readonly List<Token> _tokens;
    private readonly int _maxDepth;
    private int _index;
    private int _depth;

    private JinjaParser(List<Token> tokens, int maxDepth)
    {
        _tokens = tokens;
        _maxDepth = maxDepth;
    }

    public static IReadOnlyList<Stmt> Parse(string source, ChatTemplateLimits limits)
    {
        var parser = new JinjaParser(JinjaLexer.Tokenize(source), limits.MaxNestingDepth);
        var body = parser.ParseBody([]);
        if (parser.Current.Kind != TokenKind.Eof)
        {
            throw parser.Error($"Unexpected '{parser.Current.Value}' tag");
        }

        return body;
    }

    private Token Current => _tokens[_index];

    private Token Peek(int offset = 1) => _tokens[Math.Min(_index + offset, _tokens.Count - 1)];

    private Token Next() => _tokens[_index++];

    private ChatTemplateException Error(string message, Token? at = null)
    {
        var token = at ?? Current;
        return new ChatTemplateException($"{message} (line {token.Line}, column {token.Column})", token.Line, token.Column);
    }

    private static string Describe(Token t) => t.Kind switch
    {
        TokenKind.Eof => "end of template",
        TokenKind.BlockEnd => "end of block tag '%}'",
        TokenKind.VariableEnd => "end of variable tag '}}'",
        TokenKind.String => "string literal",
        _ => $"'{t.Value}'",
    };

    /// <summary>
    /// Enters one more level of the tree being built; <see cref="_depth"/> bounds the depth of the finished tree, which the
    /// interpreter walks recursively, as well as this parser's own recursion.
    /// </summary>
    private void Enter()
    {
        if (++_depth > _maxDepth)
        {
            throw Error(Sandbox.ExceededMessage(nameof(ChatTemplateLimits.MaxNestingDepth), _maxDepth, "statements and expressions nest too deeply"));
        }

        if (!RuntimeHelpers.TryEnsureSufficientExecutionStack())
        {
            throw Error($"The template nests too deeply for this thread's stack; lower {nameof(ChatTemplateLimits.MaxNestingDepth)} ({_maxDepth})");
        }
    }

    private Token Expect(TokenKind kind, string? value = null)
    {
        var t = Current;
        if (t.Kind != kind || (value is not null && t.Value != value))
        {
            var wanted = value ?? kind switch
            {
                TokenKind.BlockEnd => "'%}'",
                TokenKind.VariableEnd => "'}}'",
                TokenKind.Name => "a name",
                _ => kind.ToString(),
            };
            throw Error($"Expected {wanted}, got {Describe(t)}");
        }

        _index++;
        return t;
    }

    private bool SkipOperator(string op)
    {
        if (Current.IsOperator(op))
        {
            _index++;
            return true;
        }

        return false;
    }

    private bool SkipName(string name)
    {
        if (Current.IsName(name))
        {
            _index++;
            return true;
        }

        return false;
    }

    /// <summary>
    /// Parses statements until a block tag whose first word is in <paramref name="endNames"/>; on return the current token is
    /// that word (its <c>{%</c> consumed), or end of template when <paramref name="endNames"/> is empty.
    /// </summary>
    private List<Stmt> ParseBody(string[] endNames)
    {
        var body = new List<Stmt>();
        while (true)
        {
            var t = Current;
            switch (t.Kind)
            {
                case TokenKind.Eof:
                    if (endNames.Length > 0)
                    {
                        throw Error($"Unexpected end of template; expected {string.Join(" or ", endNames.Select(n => $"'{n}'"))}");
                    }

                    return body;
                case TokenKind.Text:
                    _index++;
                    body.Add(new TextStmt(t.Value, t.Line, t.Column));
                    break;
                case TokenKind.VariableBegin:
                    _index++;
                    var expr = ParseTuple(withCondExpr: true);
                    Expect(TokenKind.VariableEnd);
                    body.Add(new OutputStmt(expr, t.Line, t.Column));
                    break;
                case TokenKind.BlockBegin:
                    _index++;
                    var keyword = Current;
                    if (keyword.Kind != TokenKind.Name)
                    {
                        throw Error($"Expected a statement name, got {Describe(keyword)}");
                    }

                    if (endNames.Contains(keyword.Value))
                    {
                        return body;
                    }

                    body.Add(ParseStatement());
                    break;
                default:
                    throw Error($"Unexpected {Describe(t)}");
            }
        }
    }

    private Stmt ParseStatement()
    {
        var keyword = Next();
        Enter();
        var statement = ParseStatement(keyword);
        _depth--;
        return statement;
    }

    private Stmt ParseStatement(Token keyword)
    {
        switch (keyword.Value)
        {
            case "if":
                return ParseIf(keyword);
            case "for":
                return ParseFor(keyword);
            case "set":
                return ParseSet(keyword);
            case "macro":
                return ParseMacro(keyword);
            case "break":
                Expect(TokenKind.BlockEnd);
                return new BreakStmt(keyword.Line, keyword.Column);
            case "continue":
                Expect(TokenKind.BlockEnd);
                return new ContinueStmt(keyword.Line, keyword.Column);
            case "generation":
                {
                    // transformers' extension marks assistant spans for masks; its output is the body unchanged.
                    Expect(TokenKind.BlockEnd);
                    var body = ParseBody(["endgeneration"]);
                    Next();
                    Expect(TokenKind.BlockEnd);
                    return new BlockStmt(body, keyword.Line, keyword.Column);
                }

            default:
                throw Error($"Unknown or unsupported tag '{keyword.Value}'", keyword);
        }
    }

    private Stmt ParseIf(Token keyword)
    {
        var branches = new List<(Expr, IReadOnlyList<Stmt>)>();
        IReadOnlyList<Stmt>? elseBody = null;
        var test = ParseTuple(withCondExpr: false);
        Expect(TokenKind.BlockEnd);
        while (true)
        {
            var body = ParseBody(["elif", "else", "endif"]);
            branches.Add((test, body));
            var end = Next();
            if (end.Value == "elif")
            {
                test = ParseTuple(withCondExpr: false);
                Expect(TokenKind.BlockEnd);
                continue;
            }

            if (end.Value == "else")
            {
                Expect(TokenKind.BlockEnd);
                elseBody = ParseBody(["endif"]);
                Next();
            }

            Expect(TokenKind.BlockEnd);
            return new IfStmt(branches, elseBody, keyword.Line, keyword.Column);
        }
    }

    private Stmt ParseFor(Token keyword)
    {
        var target = ParseAssignTarget(allowNamespace: false);
        Expect(TokenKind.Name, "in");
        var iterable = ParseTuple(withCondExpr: false, extraEndNames: ["recursive", "if"]);
        Expr? filter = null;
        if (SkipName("if"))
        {
            filter = ParseExpression(withCondExpr: true);
        }

        if (Current.IsName("recursive"))
        {
            throw Error("Recursive for loops are not supported");
        }

        Expect(TokenKind.BlockEnd);
        var body = ParseBody(["endfor", "else"]);
        IReadOnlyList<Stmt>? elseBody = null;
        if (Next().Value == "else")
        {
            Expect(TokenKind.BlockEnd);
            elseBody = ParseBody(["endfor"]);
            Next();
        }

        Expect(TokenKind.BlockEnd);
        return new ForStmt(target, iterable, filter, body, elseBody, keyword.Line, keyword.Column);
    }

    private Stmt ParseSet(Token keyword)
    {
        var target = ParseAssignTarget(allowNamespace: true);
        if (SkipOperator("="))
        {
            var value = ParseTuple(withCondExpr: true);
            Expect(TokenKind.BlockEnd);
            return new SetStmt(target, value, keyword.Line, keyword.Column);
        }

        var filters = new List<(string, IReadOnlyList<Expr>)>();
        while (SkipOperator("|"))
        {
            var name = Expect(TokenKind.Name).Value;
            var args = new List<Expr>();
            if (Current.IsOperator("("))
            {
                var (positional, _) = ParseCallArguments();
                args.AddRange(positional);
            }

            filters.Add((name, args));
        }

        Expect(TokenKind.BlockEnd);
        var body = ParseBody(["endset"]);
        Next();
        Expect(TokenKind.BlockEnd);
        return new SetBlockStmt(target, body, filters, keyword.Line, keyword.Column);
    }

    private Stmt ParseMacro(Token keyword)
    {
        var name = Expect(TokenKind.Name).Value;
        var parameters = new List<string>();
        var defaults = new List<Expr?>();
        Expect(TokenKind.Operator, "(");
        while (!SkipOperator(")"))
        {
            if (parameters.Count > 0)
            {
                Expect(TokenKind.Operator, ",");
                if (SkipOperator(")"))
                {
                    break;
                }
            }

            parameters.Add(Expect(TokenKind.Name).Value);
            if (SkipOperator("="))
            {
                defaults.Add(ParseExpression(withCondExpr: true));
            }
            else if (defaults.Any(d => d is not null))
            {
                throw Error("Non-default macro parameter follows a default parameter");
            }
            else
            {
                defaults.Add(null);
            }
        }

        Expect(TokenKind.BlockEnd);
        var body = ParseBody(["endmacro"]);
        Next();
        Expect(TokenKind.BlockEnd);
        return new MacroStmt(name, parameters, defaults, body, keyword.Line, keyword.Column);
    }

    private Target ParseAssignTarget(bool allowNamespace)
    {
        var first = Current;
        var items = new List<Target> { ParseSingleTarget(allowNamespace) };
        while (SkipOperator(","))
        {
            if (Current.IsName("in") || Current.IsOperator("=") || Current.Kind == TokenKind.BlockEnd)
            {
                break;
            }

            items.Add(ParseSingleTarget(allowNamespace));
        }

        return items.Count == 1 && !_tokens[_index - 1].IsOperator(",") ? items[0] : new TupleTarget(items, first.Line, first.Column);
    }

    private Target ParseSingleTarget(bool allowNamespace)
    {
        var t = Current;
        if (SkipOperator("("))
        {
            Enter();
            var inner = ParseAssignTarget(allowNamespace);
            Expect(TokenKind.Operator, ")");
            _depth--;
            return inner;
        }

        var name = Expect(TokenKind.Name);
        if (allowNamespace && SkipOperator("."))
        {
            var attribute = Expect(TokenKind.Name);
            return new AttrTarget(name.Value, attribute.Value, t.Line, t.Column);
        }

        if (name.Value is "true" or "false" or "none" or "True" or "False" or "None")
        {
            throw Error($"Cannot assign to '{name.Value}'", name);
        }

        return new NameTarget(name.Value, t.Line, t.Column);
    }

    private bool IsTupleEnd(string[] extraEndNames)
    {
        var t = Current;
        return t.Kind is TokenKind.BlockEnd or TokenKind.VariableEnd or TokenKind.Eof ||
            (t.Kind == TokenKind.Operator && t.Value is ")" or "]" or "}" or "=") ||
            (t.Kind == TokenKind.Name && extraEndNames.Contains(t.Value));
    }

    private Expr ParseTuple(bool withCondExpr, string[]? extraEndNames = null)
    {
        extraEndNames ??= [];
        var start = Current;
        var items = new List<Expr>();
        var sawComma = false;
        while (true)
        {
            if (items.Count > 0)
            {
                if (!SkipOperator(","))
                {
                    break;
                }

                sawComma = true;
            }

            if (items.Count > 0 && IsTupleEnd(extraEndNames))
            {
                break;
            }

            items.Add(ParseExpression(withCondExpr));
        }

        return !sawComma ? items[0] : new TupleExpr(items, start.Line, start.Column);
    }

    private Expr ParseExpression(bool withCondExpr)
    {
        Enter();
        var depth = _depth;
        var expr = ParseOr();
        while (withCondExpr && Current.IsName("if"))
        {
            Enter();
            var t = Next();
            var test = ParseOr();
            Expr? otherwise = null;
            if (SkipName("else"))
            {
                otherwise = ParseExpression(withCondExpr: true);
            }

            expr = new CondExpr(test, expr, otherwise, t.Line, t.Column);
        }

        _depth = depth - 1;
        return expr;
    }

    private Expr ParseOr()
    {
        var depth = _depth;
        var left = ParseAnd();
        while (Current.IsName("or"))
        {
            Enter();
            var t = Next();
            left = new BinaryExpr("or", left, ParseAnd(), t.Line, t.Column);
        }

        _depth = depth;
        return left;
    }

    private Expr ParseAnd()
    {
        var depth = _depth;
        var left = ParseNot();
        while (Current.IsName("and"))
        {
            Enter();
            var t = Next();
            left = new BinaryExpr("and", left, ParseNot(), t.Line, t.Column);
        }

        _depth = depth;
        return left;
    }

    private Expr ParseNot()
    {
        if (Current.IsName("not"))
        {
            Enter();
            var t = Next();
            var not = new UnaryExpr("not", ParseNot(), t.Line, t.Column);
            _depth--;
            return not;
        }

        return ParseCompare();
    }

    private Expr ParseCompare()
    {
        var start = Current;
        var depth = _depth;
        var first = ParseMath1();
        var rest = new List<(string, Expr)>();
        while (true)
        {
            var t = Current;
            string op;
            if (t.Kind == TokenKind.Operator && CompareOperators.Contains(t.Value))
            {
                op = t.Value;
                _index++;
            }
            else if (t.IsName("in"))
            {
                op = "in";
                _index++;
            }
            else if (t.IsName("not") && Peek().IsName("in"))
            {
                op = "notin";
                _index += 2;
            }
            else
            {
                break;
            }

            Enter();
            rest.Add((op, ParseMath1()));
        }

        _depth = depth;
        return rest.Count == 0 ? first : new CompareExpr(first, rest, start.Line, start.Column);
    }

    private Expr ParseMath1()
    {
        var depth = _depth;
        var left = ParseConcat();
        while (Current.Kind == TokenKind.Operator && Current.Value is "+" or "-")
        {
            Enter();
            var t = Next();
            left = new BinaryExpr(t.Value, left, ParseConcat(), t.Line, t.Column);
        }

        _depth = depth;
        return left;
    }

    private Expr ParseConcat()
    {
        var depth = _depth;
        var left = ParseMath2();
        while (Current.IsOperator("~"))
        {
            Enter();
            var t = Next();
            left = new BinaryExpr("~", left, ParseMath2(), t.Line, t.Column);
        }

        _depth = depth;
        return left;
    }

    private Expr ParseMath2()
    {
        var depth = _depth;
        var left = ParsePow();
        while (Current.Kind == TokenKind.Operator && Current.Value is "*" or "/" or "//" or "%")
        {
            Enter();
            var t = Next();
            left = new BinaryExpr(t.Value, left, ParsePow(), t.Line, t.Column);
        }

        _depth = depth;
        return left;
    }

    private Expr ParsePow()
    {
        var depth = _depth;
        var left = ParseUnary(withFilter: true);
        while (Current.IsOperator("**"))
        {
            Enter();
            var t = Next();
            left = new BinaryExpr("**", left, ParseUnary(withFilter: true), t.Line, t.Column);
        }

        _depth = depth;
        return left;
    }

    private Expr ParseUnary(bool withFilter)
    {
        var t = Current;
        var depth = _depth;
        Expr node;
        if (t.IsOperator("-") || t.IsOperator("+"))
        {
            Enter();
            _index++;
            node = new UnaryExpr(t.Value, ParseUnary(withFilter: false), t.Line, t.Column);
        }
        else
        {
            node = ParsePrimary();
        }

        node = ParsePostfix(node);
        node = withFilter ? ParseFilterExpr(node) : node;
        _depth = depth;
        return node;
    }

    private Expr ParsePrimary()
    {
        var t = Next();
        switch (t.Kind)
        {
            case TokenKind.Name:
                return t.Value switch
                {
                    "true" or "True" => new ConstExpr(true, t.Line, t.Column),
                    "false" or "False" => new ConstExpr(false, t.Line, t.Column),
                    "none" or "None" => new ConstExpr(null, t.Line, t.Column),
                    _ => new NameExpr(t.Value, t.Line, t.Column),
                };
            case TokenKind.String:
                {
                    // Adjacent string literals concatenate, as in Python.
                    var text = t.Value;
                    while (Current.Kind == TokenKind.String)
                    {
                        text += Next().Value;
                    }

                    return new ConstExpr(text, t.Line, t.Column);
                }

            case TokenKind.Integer:
                if (t.Value.Length > PyValue.MaxIntegerDigits)
                {
                    throw Error($"Integer literal exceeds {PyValue.MaxIntegerDigits} digits (Python's int_max_str_digits)", t);
                }

                return new ConstExpr(
                    long.TryParse(t.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var l) ? l : PyValue.Normalize(BigInteger.Parse(t.Value, CultureInfo.InvariantCulture)),
                    t.Line,
                    t.Column);
            case TokenKind.Float:
                return new ConstExpr(double.Parse(t.Value, NumberStyles.Float, CultureInfo.InvariantCulture), t.Line, t.Column);
            case TokenKind.Operator when t.Value == "(":
                {
                    if (SkipOperator(")"))
                    {
                        return new TupleExpr([], t.Line, t.Column);
                    }

                    var inner = ParseTuple(withCondExpr: true);
                    Expect(TokenKind.Operator, ")");
                    return inner;
                }

            case TokenKind.Operator when t.Value == "[":
                {
                    Enter();
                    var items = new List<Expr>();
                    while (!SkipOperator("]"))
                    {
                        if (items.Count > 0)
                        {
                            Expect(TokenKind.Operator, ",");
                            if (SkipOperator("]"))
                            {
                                break;
                            }
                        }

                        items.Add(ParseExpression(withCondExpr: true));
                    }

                    _depth--;
                    return new ListExpr(items, t.Line, t.Column);
                }

            case TokenKind.Operator when t.Value == "{":
                {
                    Enter();
                    var items = new List<(Expr, Expr)>();
                    while (!SkipOperator("}"))
                    {
                        if (items.Count > 0)
                        {
                            Expect(TokenKind.Operator, ",");
                            if (SkipOperator("}"))
                            {
                                break;
                            }
                        }

                        var key = ParseExpression(withCondExpr: true);
                        Expect(TokenKind.Operator, ":");
                        items.Add((key, ParseExpression(withCondExpr: true)));
                    }

                    _depth--;
                    return new DictExpr(items, t.Line, t.Column);
                }

            default:
                throw Error($"Unexpected {Describe(t)}", t);
        }
    }

    private Expr ParsePostfix(Expr node)
    {
        while (true)
        {
            var t = Current;
            if (t.IsOperator(".") || t.IsOperator("[") || t.IsOperator("("))
            {
                // Each access wraps the tree built so far; the caller restores the depth.
                Enter();
            }

            if (t.IsOperator("."))
            {
                _index++;
                var name = Next();
                node = name.Kind switch
                {
                    TokenKind.Name => new AttrExpr(node, name.Value, t.Line, t.Column),
                    TokenKind.Integer => new ItemExpr(node, new ConstExpr(long.Parse(name.Value, CultureInfo.InvariantCulture), name.Line, name.Column), t.Line, t.Column),
                    _ => throw Error("Expected an attribute name after '.'", name),
                };
            }
            else if (t.IsOperator("["))
            {
                _index++;
                node = ParseSubscript(node, t);
            }
            else if (t.IsOperator("("))
            {
                var (args, kwargs) = ParseCallArguments();
                node = new CallExpr(node, args, kwargs, t.Line, t.Column);
            }
            else
            {
                return node;
            }
        }
    }

    private Expr ParseSubscript(Expr target, Token open)
    {
        Expr? start = null;
        if (!Current.IsOperator(":"))
        {
            start = ParseExpression(withCondExpr: true);
            if (SkipOperator("]"))
            {
                return new ItemExpr(target, start, open.Line, open.Column);
            }
        }

        Expect(TokenKind.Operator, ":");
        Expr? stop = null;
        Expr? step = null;
        if (!Current.IsOperator("]") && !Current.IsOperator(":"))
        {
            stop = ParseExpression(withCondExpr: true);
        }

        if (SkipOperator(":") && !Current.IsOperator("]"))
        {
            step = ParseExpression(withCondExpr: true);
        }

        Expect(TokenKind.Operator, "]");
        return new SliceExpr(target, start, stop, step, open.Line, open.Column);
    }

    private (List<Expr> Args, List<KeyValuePair<string, Expr>> Kwargs) ParseCallArguments()
    {
        Expect(TokenKind.Operator, "(");
        var args = new List<Expr>();
        var kwargs = new List<KeyValuePair<string, Expr>>();
        var first = true;
        while (!SkipOperator(")"))
        {
            if (!first)
            {
                Expect(TokenKind.Operator, ",");
                if (SkipOperator(")"))
                {
                    break;
                }
            }

            first = false;
            if (Current.Kind == TokenKind.Name && Peek().IsOperator("="))
            {
                var name = Next().Value;
                _index++;
                kwargs.Add(new(name, ParseExpression(withCondExpr: true)));
            }
            else
            {
                if (kwargs.Count > 0)
                {
                    throw Error("Positional argument follows keyword argument");
                }

                args.Add(ParseExpression(withCondExpr: true));
            }
        }

        return (args, kwargs);
    }

    private Expr ParseFilterExpr(Expr node)
    {
        while (true)
        {
            var t = Current;
            if (t.IsOperator("|") || t.IsName("is") || t.IsOperator("("))
            {
                // Each filter, test or call wraps the tree built so far; the caller restores the depth.
                Enter();
            }

            if (t.IsOperator("|"))
            {
                _index++;
                var name = Expect(TokenKind.Name).Value;
                List<Expr> args = [];
                List<KeyValuePair<string, Expr>> kwargs = [];
                if (Current.IsOperator("("))
                {
                    (args, kwargs) = ParseCallArguments();
                }

                node = new FilterExpr(node, name, args, kwargs, t.Line, t.Column);
            }
            else if (t.IsName("is"))
            {
                _index++;
                var negated = SkipName("not");
                var name = Expect(TokenKind.Name).Value;
                List<Expr> args = [];
                var next = Current;
                if (next.IsOperator("("))
                {
                    var (positional, _) = ParseCallArguments();
                    args = positional;
                }
                else if ((next.Kind is TokenKind.Name or TokenKind.String or TokenKind.Integer or TokenKind.Float ||
                          next.IsOperator("[") || next.IsOperator("{")) &&
                         !(next.IsName("else") || next.IsName("or") || next.IsName("and") || next.IsName("if")))
                {
                    if (next.IsName("is"))
                    {
                        throw Error("You cannot chain multiple tests with is");
                    }

                    args = [ParsePostfix(ParsePrimary())];
                }

                node = new TestExpr(node, name, args, negated, t.Line, t.Column);
            }
            else if (t.IsOperator("("))
            {
                var (args, kwargs) = ParseCallArguments();
                node = new CallExpr(node, args, kwargs, t.Line, t.Column);
            }
            else
            {
                return node;
            }
        }
    }
}
