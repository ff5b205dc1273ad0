namespace Qwen3.Net.Generation.Constraints;

/// <summary>One entry of the matcher's stack: the state to continue at when the current rule returns.</summary>
internal sealed class StackFrame(int returnState, StackFrame? parent, int id)
{
    /// <summary>Creation number within its intern table, giving configuration sets a canonical order.</summary>
    public int Id { get; } = id;

    public int ReturnState { get; } = returnState;

    public StackFrame? Parent { get; } = parent;

    public int Depth { get; } = parent == null ? 1 : parent.Depth + 1;
}

/// <summary>A set of live configurations (a byte state, its stack, and the characters started in its counted string) after some input, and whether that input is a complete document.</summary>
internal sealed class ConfigSet
{
    public int[] States = new int[8];
    public StackFrame?[] Stacks = new StackFrame?[8];

    /// <summary>Per configuration in a counted string (<see cref="CountedLoops"/>), the characters started; 0 elsewhere.</summary>
    public int[] Counts = new int[8];
    public int Count;
    public bool Accepting;

    /// <summary>No byte can follow and the input so far is not a document: the input was rejected.</summary>
    public bool IsDead => Count == 0 && !Accepting;

    public void Clear()
    {
        Count = 0;
        Accepting = false;
    }

    public void Add(int state, StackFrame? stack, int count)
    {
        for (int i = 0; i < Count; i++)
        {
            if (States[i] == state && ReferenceEquals(Stacks[i], stack) && Counts[i] == count)
            {
                return;
            }
        }

        if (Count == States.Length)
        {
            Array.Resize(ref States, Count * 2);
            Array.Resize(ref Stacks, Count * 2);
            Array.Resize(ref Counts, Count * 2);
        }

        States[Count] = state;
        Stacks[Count] = stack;
        Counts[Count] = count;
        Count++;
    }

    /// <summary>Orders the configurations by state, then stack, then count, so equal sets reached by different paths compare equal.</summary>
    public void Sort()
    {
        for (int i = 1; i < Count; i++)
        {
            int state = States[i];
            StackFrame? stack = Stacks[i];
            int count = Counts[i];
            int j = i - 1;
            while (j >= 0 && Compare(States[j], Stacks[j], Counts[j], state, stack, count) > 0)
            {
                States[j + 1] = States[j];
                Stacks[j + 1] = Stacks[j];
                Counts[j + 1] = Counts[j];
                j--;
            }

            States[j + 1] = state;
            Stacks[j + 1] = stack;
            Counts[j + 1] = count;
        }
    }

    private static int Compare(int state, StackFrame? stack, int count, int otherState, StackFrame? otherStack, int otherCount) =>
        state != otherState ? state.CompareTo(otherState)
        : !ReferenceEquals(stack, otherStack) ? (stack?.Id ?? 0).CompareTo(otherStack?.Id ?? 0)
        : count.CompareTo(otherCount);

    /// <summary>Copies <paramref name="other"/>, with every count replaced by <paramref name="count"/> when given.</summary>
    public void CopyFrom(ConfigSet other, int? count = null)
    {
        Clear();
        for (int i = 0; i < other.Count; i++)
        {
            Add(other.States[i], other.Stacks[i], count ?? other.Counts[i]);
        }

        Accepting = other.Accepting;
    }
}

/// <summary>Steps configuration sets of an <see cref="Automaton"/> over bytes; owns the stack-frame intern table and scratch space.</summary>
/// <remarks>Not thread-safe: one per generation (or per mask computation).</remarks>
internal sealed class AutomatonStepper
{
    private readonly Automaton _a;
    private readonly Dictionary<(StackFrame? Parent, int Return), StackFrame> _frames = [];
    private readonly HashSet<(int State, StackFrame? Stack)> _visited = [];
    private readonly Stack<(int State, StackFrame? Stack, int Count)> _work = new();

    public AutomatonStepper(Automaton automaton) => _a = automaton;

    public Automaton Automaton => _a;

    /// <summary>The configurations before any input.</summary>
    public void Start(ConfigSet to)
    {
        to.Clear();
        _visited.Clear();
        AddClosure(_a.RuleStart[0], null, 0, to);
    }

    /// <summary>Writes into <paramref name="to"/> the configurations reached from <paramref name="from"/> by byte <paramref name="b"/>.</summary>
    /// <remarks>An edge out of a counted loop's start state starts a character or closes the string, as its count allows (<see cref="CountedLoops.TryStep"/>).</remarks>
    public void Step(ConfigSet from, byte b, ConfigSet to)
    {
        to.Clear();
        _visited.Clear();
        int[] starts = _a.EdgeStarts;
        byte[] lo = _a.EdgeLo;
        byte[] hi = _a.EdgeHi;
        CountedLoops loops = _a.Loops;
        for (int i = 0; i < from.Count; i++)
        {
            int s = from.States[i];
            int loop = loops.LoopOf[s];
            bool charStart = loop >= 0 && loops.Start[loop] == s;
            for (int e = starts[s]; e < starts[s + 1]; e++)
            {
                if (b < lo[e] || b > hi[e])
                {
                    continue;
                }

                int target = _a.EdgeTarget[e];
                int count = from.Counts[i];
                if (charStart && !loops.TryStep(loop, count, loops.LoopOf[target] == loop, out count))
                {
                    continue;
                }

                AddClosure(target, from.Stacks[i], count, to);
            }
        }
    }

    private void AddClosure(int state, StackFrame? stack, int count, ConfigSet to)
    {
        int[] loopOf = _a.Loops.LoopOf;
        _work.Push((state, stack, count));
        while (_work.TryPop(out var item))
        {
            int depth = item.Stack?.Depth ?? 0;
            foreach (int k in _a.Closure[item.State])
            {
                if (depth + _a.MinDepth[k] > _a.MaxDepth)
                {
                    continue;
                }

                if (_a.EdgeStarts[k] < _a.EdgeStarts[k + 1])
                {
                    to.Add(k, item.Stack, loopOf[k] >= 0 ? item.Count : 0);
                    continue;
                }

                // Calls and returns can cycle through empty rules, so they are expanded once per step.
                if (!_visited.Add((k, item.Stack)))
                {
                    continue;
                }

                if (_a.CallRule[k] >= 0)
                {
                    _work.Push((_a.RuleStart[_a.CallRule[k]], Push(item.Stack, _a.CallReturn[k]), 0));
                }
                else if (item.Stack == null)
                {
                    to.Accepting = true;
                }
                else
                {
                    _work.Push((item.Stack.ReturnState, item.Stack.Parent, 0));
                }
            }
        }
    }

    private StackFrame Push(StackFrame? parent, int returnState)
    {
        if (!_frames.TryGetValue((parent, returnState), out StackFrame? frame))
        {
            frame = new StackFrame(returnState, parent, _frames.Count + 1);
            _frames.Add((parent, returnState), frame);
        }

        return frame;
    }
}

/// <summary>Tracks one generated document byte by byte against a compiled schema.</summary>
internal sealed class GrammarMatcher
{
    private readonly AutomatonStepper _stepper;
    private ConfigSet _current = new();
    private ConfigSet _a = new();
    private ConfigSet _b = new();

    public GrammarMatcher(Automaton automaton)
    {
        _stepper = new AutomatonStepper(automaton);
        _stepper.Start(_current);
    }

    /// <summary>The bytes accepted so far form a complete document (more bytes may still be allowed, as after <c>12</c>).</summary>
    public bool IsAccepting => _current.Accepting;

    /// <summary>The document is complete and no byte may follow.</summary>
    public bool IsComplete => _current.Accepting && _current.Count == 0;

    internal ConfigSet Current => _current;

    internal AutomatonStepper Stepper => _stepper;

    /// <summary>Consumes <paramref name="bytes"/> if they keep the document valid; otherwise returns false and changes nothing.</summary>
    public bool AcceptBytes(ReadOnlySpan<byte> bytes)
    {
        ConfigSet from = _current;
        foreach (byte b in bytes)
        {
            ConfigSet to = ReferenceEquals(from, _a) ? _b : _a;
            _stepper.Step(from, b, to);
            if (to.IsDead)
            {
                return false;
            }

            from = to;
        }

        if (!ReferenceEquals(from, _current))
        {
            ConfigSet old = _current;
            _current = from;
            if (ReferenceEquals(from, _a))
            {
                _a = old;
            }
            else
            {
                _b = old;
            }
        }

        return true;
    }
}
