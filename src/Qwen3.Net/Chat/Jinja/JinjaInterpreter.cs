using System.Globalization;
using System.Numerics;
using System.Text;

namespace Qwen3.Net.Chat.Jinja;

/// <summary>Variable scope. Jinja gives every loop iteration and macro call a child scope, so <c>set</c> there does not leak.</summary>
internal sealed class Scope(Scope? parent)
{
    private readonly Dictionary<string, object?> _vars = new(StringComparer.Ordinal);

    public Scope? Parent { get; } = parent;

    public object? Lookup(string name)
    {
        for (var scope = this; scope is not null; scope = scope.Parent)
        {
            if (scope._vars.TryGetValue(name, out var value))
            {
                return value;
            }
        }

        return new Undefined($"'{name}'");
    }

    public void Set(string name, object? value) => _vars[name] = value;
}

/// <summary>Evaluates a parsed template against a scope of Python-like values, within a <see cref="Sandbox"/>'s limits.</summary>
internal sealed class JinjaInterpreter(Sandbox sandbox)
{
    private enum Flow
    {
        Normal,
        Break,
        Continue,
    }

    public static string Render(IReadOnlyList<Stmt> template, Scope globals, Sandbox sandbox)
    {
        var output = new Output(sandbox.Limits.MaxOutputLength, nameof(ChatTemplateLimits.MaxOutputLength));
        new JinjaInterpreter(sandbox).Execute(template, new Scope(globals), output);
        return output.Text.ToString();
    }

    private Flow Execute(IReadOnlyList<Stmt> body, Scope scope, Output output)
    {
        foreach (var stmt in body)
        {
            Flow flow;
            try
            {
                flow = ExecuteOne(stmt, scope, output);
            }
            catch (JinjaRuntimeException e)
            {
                throw new ChatTemplateException(
                    e.RaisedByTemplate ? e.Message : $"{e.Message} (line {stmt.Line}, column {stmt.Column})",
                    stmt.Line,
                    stmt.Column,
                    e)
                { RaisedByTemplate = e.RaisedByTemplate };
            }

            if (flow != Flow.Normal)
            {
                return flow;
            }
        }

        return Flow.Normal;
    }

    private Flow ExecuteOne(Stmt stmt, Scope scope, Output output)
    {
        sandbox.Step();
        Sandbox.EnsureStack();
        switch (stmt)
        {
            case TextStmt text:
                Write(output, text.Text);
                return Flow.Normal;
            case OutputStmt o:
                Write(output, Str(Eval(o.Value, scope)));
                return Flow.Normal;
            case IfStmt s:
                foreach (var (test, body) in s.Branches)
                {
                    if (PyValue.Truthy(Eval(test, scope)))
                    {
                        return Execute(body, scope, output);
                    }
                }

                return s.Else is null ? Flow.Normal : Execute(s.Else, scope, output);
            case ForStmt f:
                ExecuteFor(f, scope, output);
                return Flow.Normal;
            case SetStmt s:
                Assign(s.Target, Eval(s.Value, scope), scope);
                return Flow.Normal;
            case SetBlockStmt s:
                {
                    var captured = Captured();
                    Execute(s.Body, scope, captured);
                    object? value = captured.Text.ToString();
                    foreach (var (name, args) in s.Filters)
                    {
                        value = Produced(ApplyFilter(name, value, [.. args.Select(a => Eval(a, scope))], []));
                    }

                    Assign(s.Target, value, scope);
                    return Flow.Normal;
                }

            case MacroStmt m:
                scope.Set(m.Name, MakeMacro(m, scope));
                return Flow.Normal;
            case BlockStmt b:
                return Execute(b.Body, scope, output);
            case BreakStmt:
                return Flow.Break;
            case ContinueStmt:
                return Flow.Continue;
            default:
                throw new JinjaRuntimeException($"Unsupported statement {stmt.GetType().Name}");
        }
    }

    private void ExecuteFor(ForStmt f, Scope scope, Output output)
    {
        var items = Iterate(Eval(f.Iterable, scope));
        if (f.Filter is not null)
        {
            // Jinja filters before counting, so loop.index/last refer to the filtered sequence.
            var kept = new List<object?>();
            foreach (var item in items)
            {
                sandbox.Step();
                var probe = new Scope(scope);
                Assign(f.Target, item, probe);
                if (PyValue.Truthy(Eval(f.Filter, probe)))
                {
                    kept.Add(item);
                }
            }

            items = kept;
        }

        if (items.Count == 0)
        {
            if (f.Else is not null)
            {
                Execute(f.Else, scope, output);
            }

            return;
        }

        // Snapshot so that the body cannot disturb iteration.
        sandbox.ChargeFor(items.Count);
        var snapshot = items.ToArray();
        var loop = new LoopInfo(snapshot);
        for (var i = 0; i < snapshot.Length; i++)
        {
            sandbox.Step();
            loop.Index0 = i;
            var iteration = new Scope(scope);
            iteration.Set("loop", loop);
            Assign(f.Target, snapshot[i], iteration);
            if (Execute(f.Body, iteration, output) == Flow.Break)
            {
                break;
            }
        }
    }

    private void Assign(Target target, object? value, Scope scope)
    {
        switch (target)
        {
            case NameTarget n:
                scope.Set(n.Name, value);
                break;
            case AttrTarget a:
                if (scope.Lookup(a.Name) is not Namespace ns)
                {
                    throw new JinjaRuntimeException("TypeError: cannot assign attribute on non-namespace object");
                }

                ns.Attributes[a.Attribute] = value;
                break;
            case TupleTarget t:
                {
                    var items = Iterate(value);
                    if (items.Count != t.Items.Count)
                    {
                        throw new JinjaRuntimeException($"ValueError: expected {t.Items.Count} values to unpack, got {items.Count}");
                    }

                    for (var i = 0; i < items.Count; i++)
                    {
                        Assign(t.Items[i], items[i], scope);
                    }

                    break;
                }
        }
    }

    private JinjaFunction MakeMacro(MacroStmt m, Scope definingScope) => (args, kwargs) =>
    {
        sandbox.EnterCall(m.Name);
        try
        {
            return CallMacro(m, definingScope, args, kwargs);
        }
        finally
        {
            sandbox.ExitCall();
        }
    };

    private string CallMacro(MacroStmt m, Scope definingScope, List<object?> args, Dictionary<string, object?> kwargs)
    {
        if (args.Count > m.Parameters.Count)
        {
            throw new JinjaRuntimeException($"TypeError: macro '{m.Name}' takes not more than {m.Parameters.Count} argument(s)");
        }

        var callScope = new Scope(definingScope);
        for (var i = 0; i < m.Parameters.Count; i++)
        {
            var name = m.Parameters[i];
            object? value;
            if (i < args.Count)
            {
                value = args[i];
            }
            else if (kwargs.Remove(name, out var given))
            {
                value = given;
            }
            else
            {
                value = m.Defaults[i] is { } d ? Eval(d, callScope) : new Undefined($"'{name}'");
            }

            callScope.Set(name, value);
        }

        if (kwargs.Count > 0)
        {
            throw new JinjaRuntimeException($"TypeError: macro '{m.Name}' takes no keyword argument '{kwargs.Keys.First()}'");
        }

        var output = Captured();
        Execute(m.Body, callScope, output);
        return output.Text.ToString();
    }

    // Text captured into a value, a macro's output or a set block, is bounded like any other string.
    private Output Captured() => new(sandbox.Limits.MaxStringLength, nameof(ChatTemplateLimits.MaxStringLength));

    private void Write(Output output, string text)
    {
        var length = (long)output.Text.Length + text.Length;
        if (length > output.Max)
        {
            throw Sandbox.Exceeded(output.Limit, output.Max, $"the template writes {length} characters");
        }

        sandbox.ChargeFor(text.Length);
        output.Text.Append(text);
    }

    private object? Eval(Expr expr, Scope scope)
    {
        sandbox.Step();
        Sandbox.EnsureStack();
        switch (expr)
        {
            case ConstExpr c:
                return c.Value;
            case NameExpr n:
                return scope.Lookup(n.Name);
            case AttrExpr a:
                return GetAttribute(Eval(a.Target, scope), a.Name);
            case ItemExpr i:
                return GetItem(Eval(i.Target, scope), Eval(i.Key, scope));
            case SliceExpr s:
                return Produced(Slice(Eval(s.Target, scope), EvalOptional(s.Start, scope), EvalOptional(s.Stop, scope), EvalOptional(s.Step, scope)));
            case CallExpr call:
                {
                    var callee = Eval(call.Callee, scope);
                    var args = call.Args.Select(a => Eval(a, scope)).ToList();
                    var kwargs = call.Kwargs.ToDictionary(kv => kv.Key, kv => Eval(kv.Value, scope), StringComparer.Ordinal);
                    return callee switch
                    {
                        JinjaFunction f => Produced(f(args, kwargs)),
                        Undefined u => throw u.Fail(),
                        _ => throw new JinjaRuntimeException($"TypeError: '{PyValue.TypeName(callee)}' object is not callable"),
                    };
                }

            case FilterExpr f:
                return Produced(ApplyFilter(
                    f.Name,
                    Eval(f.Value, scope),
                    [.. f.Args.Select(a => Eval(a, scope))],
                    f.Kwargs.ToDictionary(kv => kv.Key, kv => Eval(kv.Value, scope), StringComparer.Ordinal)));
            case TestExpr t:
                {
                    var result = ApplyTest(t.Name, Eval(t.Value, scope), [.. t.Args.Select(a => Eval(a, scope))]);
                    return t.Negated ? !result : result;
                }

            case UnaryExpr u:
                {
                    var value = Eval(u.Operand, scope);
                    return u.Op switch
                    {
                        "not" => !PyValue.Truthy(value),
                        "-" => PyValue.Negate(value),
                        _ => PyValue.IsNumber(value) ? (value is bool b ? (b ? 1L : 0L) : value) : throw new JinjaRuntimeException($"TypeError: bad operand type for unary +: '{PyValue.TypeName(value)}'"),
                    };
                }

            case BinaryExpr b:
                {
                    var left = Eval(b.Left, scope);
                    switch (b.Op)
                    {
                        case "and":
                            return PyValue.Truthy(left) ? Eval(b.Right, scope) : left;
                        case "or":
                            return PyValue.Truthy(left) ? left : Eval(b.Right, scope);
                        case "~":
                            {
                                var x = Str(left);
                                var y = Str(Eval(b.Right, scope));
                                sandbox.NeedString((long)x.Length + y.Length);
                                return x + y;
                            }

                        default:
                            return PyValue.Arithmetic(b.Op, left, Eval(b.Right, scope), sandbox);
                    }
                }

            case CompareExpr c:
                {
                    var left = Eval(c.First, scope);
                    foreach (var (op, rightExpr) in c.Rest)
                    {
                        var right = Eval(rightExpr, scope);
                        var ok = op switch
                        {
                            "==" => PyValue.Equal(left, right, sandbox),
                            "!=" => !PyValue.Equal(left, right, sandbox),
                            "<" => PyValue.Compare(left, right, op, sandbox) < 0,
                            "<=" => PyValue.Compare(left, right, op, sandbox) <= 0,
                            ">" => PyValue.Compare(left, right, op, sandbox) > 0,
                            ">=" => PyValue.Compare(left, right, op, sandbox) >= 0,
                            "in" => PyValue.Contains(right, left, sandbox),
                            _ => !PyValue.Contains(right, left, sandbox),
                        };
                        if (!ok)
                        {
                            return false;
                        }

                        left = right;
                    }

                    return true;
                }

            case CondExpr c:
                if (PyValue.Truthy(Eval(c.Test, scope)))
                {
                    return Eval(c.Then, scope);
                }

                return c.Else is null ? new Undefined("conditional expression without else") : Eval(c.Else, scope);
            case ListExpr l:
                return l.Items.Select(i => Eval(i, scope)).ToList();
            case TupleExpr t:
                return new PyTuple([.. t.Items.Select(i => Eval(i, scope))]);
            case DictExpr d:
                {
                    var dict = new PyDict();
                    foreach (var (k, v) in d.Items)
                    {
                        var key = Eval(k, scope);
                        dict[sandbox.Key(key) ?? throw new JinjaRuntimeException("TypeError: None is not supported as a dict key here")] = Eval(v, scope);
                    }

                    return dict;
                }

            default:
                throw new JinjaRuntimeException($"Unsupported expression {expr.GetType().Name}");
        }
    }

    private object? EvalOptional(Expr? expr, Scope scope) => expr is null ? null : Eval(expr, scope);

    private string Str(object? value) => PyValue.ToStr(value, sandbox);

    private IReadOnlyList<object?> Iterate(object? value) => PyValue.Iterate(value, sandbox);

    /// <summary><c>separator.join(parts)</c>, checking the length as it grows rather than after building it.</summary>
    private string Join(string separator, IEnumerable<string> parts)
    {
        var list = new List<string>();
        var length = 0L;
        foreach (var part in parts)
        {
            length += part.Length + (list.Count > 0 ? separator.Length : 0);
            sandbox.CheckString(length);
            list.Add(part);
        }

        return string.Join(separator, list);
    }

    /// <summary>
    /// Checks and charges for the string or list a function or filter returned: operations that could build one far
    /// beyond the limits check before they build it, and this catches the rest at no more than a few times the limit.
    /// </summary>
    private object? Produced(object? value) => value switch
    {
        string s => sandbox.Checked(s),
        List<object?> list => sandbox.Checked(list),
        _ => value,
    };

    // Attribute syntax (x.name) prefers methods, then items — Jinja's environment.getattr.
    private object? GetAttribute(object? target, string name)
    {
        switch (target)
        {
            case Undefined u:
                throw u.Fail();
            case LoopInfo loop:
                return loop.Attribute(name);
            case Namespace ns:
                return ns.Attributes.TryGetValue(name, out var nsValue) ? nsValue : new Undefined($"'{name}'");
            case string s:
                {
                    // Every string method may pass over the whole text, so calling one is charged for its length.
                    var method = StringMethod(s, name);
                    return method is null
                        ? new Undefined($"'str object' has no attribute '{name}'")
                        : new JinjaFunction((args, kwargs) =>
                        {
                            sandbox.ChargeFor(s.Length);
                            return method(args, kwargs);
                        });
                }
            case PyDict dict:
                return (object?)DictMethod(dict, name) ?? (dict.TryGetValue(name, out var value) ? value : new Undefined($"'dict object' has no attribute '{name}'"));
            case List<object?> list:
                return (object?)ListMethod(list, name) ?? new Undefined($"'list object' has no attribute '{name}'");
            default:
                return new Undefined($"'{PyValue.TypeName(target)} object' has no attribute '{name}'");
        }
    }

    // Subscript syntax (x[key]) prefers items, then attributes — Jinja's environment.getitem.
    private object? GetItem(object? target, object? key)
    {
        switch (target)
        {
            case Undefined u:
                throw u.Fail();
            case PyDict dict when sandbox.Key(key) is not null && dict.TryGetValue(key!, out var value):
                return value;
            case List<object?> or PyTuple or string when PyValue.IsInteger(key) || key is bool:
                {
                    var items = target is string s ? ChargedCodePoints(s) : Iterate(target);
                    var index = key is bool b ? (b ? 1L : 0L) : key is long l ? l : long.MaxValue;
                    if (index < 0)
                    {
                        index += items.Count;
                    }

                    return index >= 0 && index < items.Count ? items[(int)index] : new Undefined("index out of range");
                }
        }

        return key is string name ? GetAttribute(target, name) : new Undefined($"{PyValue.Repr(key, sandbox)}");
    }

    private object? Slice(object? target, object? start, object? stop, object? step)
    {
        if (target is Undefined u)
        {
            throw u.Fail();
        }

        IReadOnlyList<object?> items = target switch
        {
            string s => ChargedCodePoints(s),
            List<object?> list => list,
            PyTuple t => t.Items,
            _ => throw new JinjaRuntimeException($"TypeError: '{PyValue.TypeName(target)}' object is not subscriptable"),
        };

        long SliceArg(object? v, string what) => v switch
        {
            long l => l,
            bool b => b ? 1 : 0,
            BigInteger bi => bi.Sign > 0 ? long.MaxValue : long.MinValue,
            _ => throw new JinjaRuntimeException($"TypeError: slice {what} must be an integer or None"),
        };

        var n = (long)items.Count;
        var stepValue = step is null ? 1 : SliceArg(step, "step");
        if (stepValue == 0)
        {
            throw new JinjaRuntimeException("ValueError: slice step cannot be zero");
        }

        // Python's slice.indices clamping rules.
        long Clamp(object? v, long defaultValue, long low, long high)
        {
            if (v is null)
            {
                return defaultValue;
            }

            var x = SliceArg(v, "index");
            if (x < 0)
            {
                x += n;
            }

            return Math.Clamp(x, low, high);
        }

        var result = new List<object?>();
        if (stepValue > 0)
        {
            var from = Clamp(start, 0, 0, n);
            var to = Clamp(stop, n, 0, n);
            for (var i = from; i < to; i += stepValue)
            {
                result.Add(items[(int)i]);
            }
        }
        else
        {
            var from = Clamp(start, n - 1, -1, n - 1);
            var to = Clamp(stop, -1, -1, n - 1);
            for (var i = from; i > to; i += stepValue)
            {
                result.Add(items[(int)i]);
            }
        }

        return target switch
        {
            string => string.Concat(result.Cast<string>()),
            PyTuple => new PyTuple(result),
            _ => result,
        };
    }

    // Indexing, slicing and reversing split a string into code points: charged for the pass, not checked as a list they return.
    private string[] ChargedCodePoints(string s)
    {
        sandbox.ChargeFor(s.Length);
        return PyText.CodePoints(s);
    }

    private static string ArgString(List<object?> args, int index, string method)
    {
        if (index >= args.Count)
        {
            throw new JinjaRuntimeException($"TypeError: {method}() missing required argument");
        }

        return args[index] as string ?? throw new JinjaRuntimeException($"TypeError: {method}() argument must be str, not {PyValue.TypeName(args[index])}");
    }

    // Stripping a set of characters tests each character of the text against the set.
    private string? OptionalChars(string text, List<object?> args, string method)
    {
        var chars = args.Count == 0 || args[0] is null ? null : ArgString(args, 0, method);
        sandbox.ChargeSearch(text, chars ?? "");
        return chars;
    }

    private static long ArgInt(object? value, string method) => value switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        _ => throw new JinjaRuntimeException($"TypeError: {method}() argument must be int, not {PyValue.TypeName(value)}"),
    };

    private static bool AffixMatch(string s, object? affix, bool prefix, string method)
    {
        if (affix is PyTuple t)
        {
            return t.Items.Any(a => AffixMatch(s, a, prefix, method));
        }

        var text = affix as string ?? throw new JinjaRuntimeException($"TypeError: {method} first arg must be str or a tuple of str, not {PyValue.TypeName(affix)}");
        return prefix ? s.StartsWith(text, StringComparison.Ordinal) : s.EndsWith(text, StringComparison.Ordinal);
    }

    private JinjaFunction? StringMethod(string s, string name) => name switch
    {
        "startswith" => (args, _) => AffixMatch(s, args.Count > 0 ? args[0] : null, prefix: true, "startswith"),
        "endswith" => (args, _) => AffixMatch(s, args.Count > 0 ? args[0] : null, prefix: false, "endswith"),
        "strip" => (args, _) => PyText.Strip(s, OptionalChars(s, args, name)),
        "lstrip" => (args, _) => PyText.LStrip(s, OptionalChars(s, args, name)),
        "rstrip" => (args, _) => PyText.RStrip(s, OptionalChars(s, args, name)),
        "split" => (args, kwargs) =>
        {
            var sep = args.Count > 0 ? args[0] : kwargs.GetValueOrDefault("sep");
            var max = args.Count > 1 ? args[1] : kwargs.GetValueOrDefault("maxsplit", -1L);
            var separator = sep is null ? null : sep as string ?? throw new JinjaRuntimeException("TypeError: must be str or None");
            return PyText.Split(sandbox.ChargeSearch(s, separator ?? ""), separator, ArgInt(max, name));
        },
        "rsplit" => (args, kwargs) =>
        {
            var sep = args.Count > 0 ? args[0] : kwargs.GetValueOrDefault("sep");
            var max = ArgInt(args.Count > 1 ? args[1] : kwargs.GetValueOrDefault("maxsplit", -1L), name);
            sandbox.ChargeSearch(s, sep as string ?? "");
            if (max < 0)
            {
                return PyText.Split(s, sep as string, -1);
            }

            if (sep is not string separator)
            {
                throw new JinjaRuntimeException("rsplit with maxsplit requires a separator in this implementation");
            }

            // Splitting the reversed text from the left equals splitting the original from the right.
            var reversed = PyText.Split(Reverse(s), Reverse(separator), max);
            reversed.Reverse();
            return reversed.Select(p => (object?)Reverse((string)p!)).ToList();
        },
        "splitlines" => (_, _) => SplitLines(s),
        "upper" => (_, _) => s.ToUpperInvariant(),
        "lower" => (_, _) => s.ToLowerInvariant(),
        "title" => (_, _) => Title(s),
        "capitalize" => (_, _) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant(),
        "replace" => (args, _) =>
        {
            var old = ArgString(args, 0, name);
            var replacement = ArgString(args, 1, name);
            var count = args.Count > 2 ? ArgInt(args[2], name) : -1;
            return Replace(s, old, replacement, count);
        },
        "find" => (args, _) => (long)s.IndexOf(Pattern(s, args, name), StringComparison.Ordinal),
        "rfind" => (args, _) => (long)s.LastIndexOf(Pattern(s, args, name), StringComparison.Ordinal),
        "count" => (args, _) => (long)CountOccurrences(s, Pattern(s, args, name)),
        "join" => (args, _) => Join(s, Iterate(args.Count > 0 ? args[0] : null).Select(i => i as string ?? throw new JinjaRuntimeException($"TypeError: sequence item: expected str instance, {PyValue.TypeName(i)} found"))),
        "isdigit" => (_, _) => s.Length > 0 && s.All(char.IsDigit),
        "isalpha" => (_, _) => s.Length > 0 && s.All(char.IsLetter),
        "isspace" => (_, _) => s.Length > 0 && s.All(PyText.IsWhiteSpace),
        "islower" => (_, _) => s.Any(char.IsLetter) && !s.Any(char.IsUpper),
        "isupper" => (_, _) => s.Any(char.IsLetter) && !s.Any(char.IsLower),
        _ => null,
    };

    // Python's str.splitlines() without keepends: \r\n, \r and \n end lines, and a final line break adds no empty line.
    private static List<object?> SplitLines(string s)
    {
        var lines = new List<object?>();
        var start = 0;
        for (var i = 0; i < s.Length; i++)
        {
            if (s[i] is '\n' or '\r')
            {
                lines.Add(s[start..i]);
                if (s[i] == '\r' && i + 1 < s.Length && s[i + 1] == '\n')
                {
                    i++;
                }

                start = i + 1;
            }
        }

        if (start < s.Length)
        {
            lines.Add(s[start..]);
        }

        return lines;
    }

    private string Reverse(string s) => string.Concat(ChargedCodePoints(s).Reverse());

    private static string Title(string s)
    {
        var sb = new StringBuilder(s.Length);
        var previousCased = false;
        foreach (var c in s)
        {
            sb.Append(previousCased ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c));
            previousCased = char.IsLetter(c);
        }

        return sb.ToString();
    }

    private string Escape(string s)
    {
        var growth = 0L;
        foreach (var c in s)
        {
            growth += c switch
            {
                '&' or '\'' or '"' => 4,
                '<' or '>' => 3,
                _ => 0,
            };
        }

        sandbox.CheckString(s.Length + growth);
        return s.Replace("&", "&amp;", StringComparison.Ordinal).Replace("<", "&lt;", StringComparison.Ordinal)
            .Replace(">", "&gt;", StringComparison.Ordinal).Replace("'", "&#39;", StringComparison.Ordinal).Replace("\"", "&#34;", StringComparison.Ordinal);
    }

    // The string a method searches for, charged as a search of the text.
    private string Pattern(string text, List<object?> args, string method) => sandbox.ChargeSearch(text, ArgString(args, 0, method));

    private string Replace(string s, string old, string replacement, long count)
    {
        sandbox.ChargeSearch(s, old);
        if (replacement.Length > old.Length)
        {
            var occurrences = (long)CountOccurrences(s, old);
            sandbox.CheckString(s.Length + ((count < 0 ? occurrences : Math.Min(occurrences, count)) * (replacement.Length - old.Length)));
        }

        if (count < 0)
        {
            return old.Length == 0 ? string.Join(replacement, ["", .. PyText.CodePoints(s), ""]) : s.Replace(old, replacement, StringComparison.Ordinal);
        }

        var sb = new StringBuilder();
        var from = 0;
        for (var done = 0L; done < count && old.Length > 0; done++)
        {
            var at = s.IndexOf(old, from, StringComparison.Ordinal);
            if (at < 0)
            {
                break;
            }

            sb.Append(s, from, at - from).Append(replacement);
            from = at + old.Length;
        }

        return sb.Append(s, from, s.Length - from).ToString();
    }

    private static int CountOccurrences(string s, string sub)
    {
        if (sub.Length == 0)
        {
            return PyText.Length(s) + 1;
        }

        var count = 0;
        for (var at = s.IndexOf(sub, StringComparison.Ordinal); at >= 0; at = s.IndexOf(sub, at + sub.Length, StringComparison.Ordinal))
        {
            count++;
        }

        return count;
    }

    private JinjaFunction? DictMethod(PyDict dict, string name) => name switch
    {
        "items" => (_, _) => dict.Select(kv => (object?)new PyTuple([kv.Key, kv.Value])).ToList(),
        "keys" => (_, _) => dict.Keys.Cast<object?>().ToList(),
        "values" => (_, _) => dict.Values.ToList(),
        "get" => (args, _) =>
        {
            if (args.Count == 0)
            {
                throw new JinjaRuntimeException("TypeError: get expected at least 1 argument, got 0");
            }

            return sandbox.Key(args[0]) is not null && dict.TryGetValue(args[0]!, out var v) ? v : args.Count > 1 ? args[1] : null;
        },
        _ => null,
    };

    private JinjaFunction? ListMethod(List<object?> list, string name) => name switch
    {
        "index" => (args, _) =>
        {
            var i = list.FindIndex(x => PyValue.Equal(x, args.Count > 0 ? args[0] : null, sandbox));
            return i >= 0 ? (long)i : throw new JinjaRuntimeException("ValueError: value is not in list");
        },
        "count" => (args, _) => (long)list.Count(x => PyValue.Equal(x, args.Count > 0 ? args[0] : null, sandbox)),
        _ => null,
    };

    private object? ApplyFilter(string name, object? value, List<object?> args, Dictionary<string, object?> kwargs)
    {
        // Like string methods, a filter may pass over the whole text.
        if (value is string text)
        {
            sandbox.ChargeFor(text.Length);
        }

        object? Arg(int index, string keyword, object? fallback) =>
            index < args.Count ? args[index] : kwargs.TryGetValue(keyword, out var v) ? v : fallback;

        switch (name)
        {
            case "tojson":
                {
                    var indent = Arg(0, "indent", null);
                    return PyJson.Dumps(value, indent is null ? null : ArgInt(indent, name), sandbox);
                }

            case "length":
            case "count":
                return value switch
                {
                    string s => (long)PyText.Length(s),
                    PyDict d => (long)d.Count,
                    Undefined => 0L,
                    _ => (long)Iterate(value).Count,
                };
            case "string":
                return Str(value);
            case "trim":
                {
                    var chars = Arg(0, "chars", null) as string;
                    return PyText.Strip(sandbox.ChargeSearch(Str(value), chars ?? ""), chars);
                }

            case "lower":
                return Str(value).ToLowerInvariant();
            case "upper":
                return Str(value).ToUpperInvariant();
            case "capitalize":
                {
                    var s = Str(value);
                    return s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();
                }

            case "title":
                return Title(Str(value));
            case "replace":
                return Replace(Str(value), Str(Arg(0, "old", "")), Str(Arg(1, "new", "")), Arg(2, "count", null) is { } c ? ArgInt(c, name) : -1);
            case "default":
            case "d":
                {
                    var fallback = Arg(0, "default_value", "");
                    var boolean = PyValue.Truthy(Arg(1, "boolean", false));
                    return value is Undefined || (boolean && !PyValue.Truthy(value)) ? fallback : value;
                }

            case "join":
                {
                    var separator = Str(Arg(0, "d", ""));
                    var attribute = Arg(1, "attribute", null);
                    return Join(separator, Iterate(value).Select(i => Str(attribute is string a ? GetAttribute(i, a) : i)));
                }

            case "first":
                {
                    var items = Iterate(value);
                    return items.Count > 0 ? items[0] : new Undefined("first item of empty sequence");
                }

            case "last":
                {
                    var items = Iterate(value);
                    return items.Count > 0 ? items[^1] : new Undefined("last item of empty sequence");
                }

            case "list":
                return Iterate(value).ToList();
            case "reverse":
                return value is string rs ? Reverse(rs) : Iterate(value).Reverse().ToList();
            case "items":
                return value switch
                {
                    PyDict d => d.Select(kv => (object?)new PyTuple([kv.Key, kv.Value])).ToList(),
                    Undefined => new List<object?>(),
                    _ => throw new JinjaRuntimeException($"TypeError: can only get item pairs from a mapping, not {PyValue.TypeName(value)}"),
                };
            case "safe":
                return value;
            case "escape":
            case "e":
                return Escape(Str(value));
            case "int":
                return value switch
                {
                    long or BigInteger => value,
                    bool b => b ? 1L : 0L,
                    double d => (long)Math.Truncate(d),
                    string s when long.TryParse(s.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l) => l,
                    _ => Arg(0, "default", 0L),
                };
            case "float":
                return value switch
                {
                    long l => (double)l,
                    bool b => b ? 1.0 : 0.0,
                    double d => d,
                    string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var f) => f,
                    _ => Arg(0, "default", 0.0),
                };
            case "abs":
                return value switch
                {
                    long l => PyValue.Normalize(BigInteger.Abs(l)),
                    double d => Math.Abs(d),
                    bool b => b ? 1L : 0L,
                    _ => throw new JinjaRuntimeException($"TypeError: bad operand type for abs(): '{PyValue.TypeName(value)}'"),
                };
            default:
                throw new JinjaRuntimeException($"No filter named '{name}'");
        }
    }

    private bool ApplyTest(string name, object? value, List<object?> args)
    {
        object? Arg0() => args.Count > 0 ? args[0] : throw new JinjaRuntimeException($"TypeError: test '{name}' needs an argument");

        return name switch
        {
            "defined" => value is not Undefined,
            "undefined" => value is Undefined,
            "none" => value is null,
            "boolean" => value is bool,
            "true" => value is true,
            "false" => value is false,
            "integer" => value is long or BigInteger,
            "float" => value is double,
            "number" => value is long or BigInteger or double,
            "string" => value is string,
            "mapping" => value is PyDict,
            "sequence" => value is string or List<object?> or PyTuple or PyDict,
            "iterable" => value is string or List<object?> or PyTuple or PyDict,
            "callable" => value is JinjaFunction,
            "odd" => ArgInt(value, name) % 2 != 0,
            "even" => ArgInt(value, name) % 2 == 0,
            "divisibleby" => ArgInt(value, name) % ArgInt(Arg0(), name) == 0,
            "eq" or "equalto" or "==" => PyValue.Equal(value, Arg0(), sandbox),
            "ne" or "!=" => !PyValue.Equal(value, Arg0(), sandbox),
            "lt" or "lessthan" or "<" => PyValue.Compare(value, Arg0(), "<", sandbox) < 0,
            "le" or "<=" => PyValue.Compare(value, Arg0(), "<=", sandbox) <= 0,
            "gt" or "greaterthan" or ">" => PyValue.Compare(value, Arg0(), ">", sandbox) > 0,
            "ge" or ">=" => PyValue.Compare(value, Arg0(), ">=", sandbox) >= 0,
            "in" => PyValue.Contains(Arg0(), value, sandbox),
            "sameas" => ReferenceEquals(value, Arg0()) || (value is null && Arg0() is null) || (value is bool b && Arg0() is bool c && b == c),
            "lower" => value is string s && sandbox.Checked(s) == s.ToLowerInvariant(),
            "upper" => value is string u && sandbox.Checked(u) == u.ToUpperInvariant(),
            _ => throw new JinjaRuntimeException($"No test named '{name}'"),
        };
    }

    /// <summary>Text a template writes to, and the limit on how long it may grow: the prompt, a macro's output or a set block.</summary>
    private sealed class Output(int max, string limit)
    {
        public StringBuilder Text { get; } = new();

        public int Max { get; } = max;

        public string Limit { get; } = limit;
    }
}
