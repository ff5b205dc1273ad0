namespace Qwen3.Net.Chat.Jinja;

internal abstract record Node(int Line, int Column);

// Expressions.
internal abstract record Expr(int Line, int Column) : Node(Line, Column);

internal sealed record ConstExpr(object? Value, int Line, int Column) : Expr(Line, Column);

internal sealed record NameExpr(string Name, int Line, int Column) : Expr(Line, Column);

internal sealed record AttrExpr(Expr Target, string Name, int Line, int Column) : Expr(Line, Column);

internal sealed record ItemExpr(Expr Target, Expr Key, int Line, int Column) : Expr(Line, Column);

internal sealed record SliceExpr(Expr Target, Expr? Start, Expr? Stop, Expr? Step, int Line, int Column) : Expr(Line, Column);

internal sealed record CallExpr(Expr Callee, IReadOnlyList<Expr> Args, IReadOnlyList<KeyValuePair<string, Expr>> Kwargs, int Line, int Column) : Expr(Line, Column);

internal sealed record FilterExpr(Expr Value, string Name, IReadOnlyList<Expr> Args, IReadOnlyList<KeyValuePair<string, Expr>> Kwargs, int Line, int Column) : Expr(Line, Column);

internal sealed record TestExpr(Expr Value, string Name, IReadOnlyList<Expr> Args, bool Negated, int Line, int Column) : Expr(Line, Column);

internal sealed record BinaryExpr(string Op, Expr Left, Expr Right, int Line, int Column) : Expr(Line, Column);

internal sealed record UnaryExpr(string Op, Expr Operand, int Line, int Column) : Expr(Line, Column);

internal sealed record CompareExpr(Expr First, IReadOnlyList<(string Op, Expr Right)> Rest, int Line, int Column) : Expr(Line, Column);

internal sealed record CondExpr(Expr Test, Expr Then, Expr? Else, int Line, int Column) : Expr(Line, Column);

internal sealed record ListExpr(IReadOnlyList<Expr> Items, int Line, int Column) : Expr(Line, Column);

internal sealed record TupleExpr(IReadOnlyList<Expr> Items, int Line, int Column) : Expr(Line, Column);

internal sealed record DictExpr(IReadOnlyList<(Expr Key, Expr Value)> Items, int Line, int Column) : Expr(Line, Column);

// Assignment targets: a name, a namespace attribute (ns.x) or a tuple of names.
internal abstract record Target(int Line, int Column) : Node(Line, Column);

internal sealed record NameTarget(string Name, int Line, int Column) : Target(Line, Column);

internal sealed record AttrTarget(string Name, string Attribute, int Line, int Column) : Target(Line, Column);

internal sealed record TupleTarget(IReadOnlyList<Target> Items, int Line, int Column) : Target(Line, Column);

// Statements.
internal abstract record Stmt(int Line, int Column) : Node(Line, Column);

internal sealed record TextStmt(string Text, int Line, int Column) : Stmt(Line, Column);

internal sealed record OutputStmt(Expr Value, int Line, int Column) : Stmt(Line, Column);

internal sealed record IfStmt(IReadOnlyList<(Expr Test, IReadOnlyList<Stmt> Body)> Branches, IReadOnlyList<Stmt>? Else, int Line, int Column) : Stmt(Line, Column);

internal sealed record ForStmt(Target Target, Expr Iterable, Expr? Filter, IReadOnlyList<Stmt> Body, IReadOnlyList<Stmt>? Else, int Line, int Column) : Stmt(Line, Column);

internal sealed record SetStmt(Target Target, Expr Value, int Line, int Column) : Stmt(Line, Column);

internal sealed record SetBlockStmt(Target Target, IReadOnlyList<Stmt> Body, IReadOnlyList<(string Name, IReadOnlyList<Expr> Args)> Filters, int Line, int Column) : Stmt(Line, Column);

internal sealed record MacroStmt(string Name, IReadOnlyList<string> Parameters, IReadOnlyList<Expr?> Defaults, IReadOnlyList<Stmt> Body, int Line, int Column) : Stmt(Line, Column);

internal sealed record BlockStmt(IReadOnlyList<Stmt> Body, int Line, int Column) : Stmt(Line, Column);

internal sealed record BreakStmt(int Line, int Column) : Stmt(Line, Column);

internal sealed record ContinueStmt(int Line, int Column) : Stmt(Line, Column);
