using Qwen3.Net.Chat;

namespace Qwen3.Net.Tests.Chat;

/// <summary>
/// Jinja features beyond what the goldens exercise. Expected strings were produced by Python Jinja2 3.1.6 configured like
/// transformers (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, tojson = json.dumps(ensure_ascii=False)).
/// </summary>
public class JinjaSemanticsTests
{
    private static string Render(string template) => ChatTemplate.Parse(template).Render([]);

    /// <summary>Found by the jinja-template fuzz target (fuzz/corpus/jinja-template/bug-*): each threw a non-template exception.</summary>
    [Theory]
    [InlineData("{% raw %}x{% endraw", "Malformed '{% endraw %}'")]
    [InlineData("{% raw %}x{% endraw -", "Malformed '{% endraw %}'")]
    [InlineData("{{ namespace(n=0, n=[]) }}", "Keyword argument 'n' repeated")]
    [InlineData("{{ 'a' | replace(old='a', old='b') }}", "Keyword argument 'old' repeated")]
    public void Malformed_templates_found_by_fuzzing_fail_to_parse(string template, string message) =>
        FluentActions.Invoking(() => ChatTemplate.Parse(template)).Should().Throw<ChatTemplateException>().WithMessage($"*{message}*");

    [Fact]
    public void An_integer_attribute_too_large_for_a_long_is_a_missing_item() =>
        Render("{{ [1, 2].99999999999999999999 is defined }} {{ [1, 2].1 }}").Should().Be("False 2");

    [Theory]
    [InlineData("a  \n  {% if true %}\n  x\n  {%- endif %}  \n{# c #}\nb\n", "a  \n  x  \nb")]
    [InlineData("{% for i in [1,2,3] %}\n    {{ i }}{% if not loop.last %},{% endif %}\n{% endfor %}\nend", "    1,    2,    3end")]
    [InlineData("  {%+ if true %}kept{% endif %}|{% if true +%}\nnl{% endif %}", "  kept|\nnl")]
    [InlineData("{{- ' x ' -}}  \n  {{ 'y' }}   {{- 'z' }}", " x yz")]
    [InlineData("{% set ns = namespace(n=0, s='') %}{% for x in 'abc' %}{% set ns.n = ns.n + loop.index %}{% set ns.s = x ~ ns.s %}{% endfor %}{{ ns.n }} {{ ns.s }}", "6 cba")]
    [InlineData("{% for x in range(10) %}{% if x is odd %}{% continue %}{% endif %}{% if x > 6 %}{% break %}{% endif %}{{ x }}{% endfor %}", "0246")]
    [InlineData("{{ [1,2,3][::-1] }} {{ 'h\u00e9llo'[1:3] }} {{ [1,2,3,4,5][1::2] }} {{ [1,2,3][-1] }} {{ 'abc'[::-1] }}", "[3, 2, 1] \u00e9l [2, 4] 3 cba")]
    [InlineData("{{ {'b': [1, 2.5, 1e20, 0.0001, 1e-7, true, none, '\u00e9\"\\\\\\n\\t\\u0001'], 'a': {'z': {}}} | tojson }}", "{\"b\": [1, 2.5, 1e+20, 0.0001, 1e-07, true, null, \"\u00e9\\\"\\\\\\n\\t\\u0001\"], \"a\": {\"z\": {}}}")]
    [InlineData("{{ '  x\\n'.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x','c')) }}|{{ 'a-b-c'.rsplit('-', 1) }}", "x|a|['a', 'b', '', 'c']|['a', 'b']|TrueTrue|['a-b', 'c']")]
    [InlineData("{{ 1 ~ 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 'ab' * 2 }} {{ 3 > 2 > 1 }} {{ 1 == 1.0 }}", "12 3 -4 1 3.5 1024 abab True True")]
    [InlineData("{{ x is defined }} {{ none is none }} {{ 'a' is string }} {{ 1 is number }} {{ {} is mapping }} {{ [] is iterable }} {{ 'a' in 'cat' }} {{ 2 not in [1] }} {{ 1 is not string }}", "False True True True True True True True True")]
    [InlineData("{{ 'x' if false }}|{{ 'y' if false else 'z' }}|{{ x | default('dflt') }}|{{ [3,1] | length }}|{{ '  t ' | trim }}|{{ 42 | string }}|{{ ['a','b'] | join('-') }}|{{ 'Ab' | upper }}{{ 'Ab' | lower }}", "|z|dflt|2|t|42|a-b|ABab")]
    [InlineData("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Bob') }} {{ greet('Al', punct='?') }}", "Hi Bob! Hi Al?")]
    [InlineData("{% for k, v in {'a': 1, 'b': 2}.items() %}{{ k }}={{ v }}{% if not loop.last %}&{% endif %}{% endfor %}|{% for x in [] %}x{% else %}empty{% endfor %}", "a=1&b=2|empty")]
    [InlineData("{% for m in [1,2,3,4] if m is even %}{{ loop.index }}/{{ loop.length }}:{{ m }} {% endfor %}", "1/2:2 2/2:4 ")]
    [InlineData("{% set x %}inner {{ 1 + 1 }}{% endset %}[{{ x }}] {{ {'a': 1}.get('b', 'none-ish') }} {{ (1, 2) }} {{ [none, true, 'it\\'s'] }}", "[inner 2] none-ish (1, 2) [None, True, \"it's\"]")]
    [InlineData("{{ 'a\\r\\nb\\rc\\n\\nd\\n'.splitlines() }}", "['a', 'b', 'c', '', 'd']")]
    [InlineData("{% raw %}{{ not evaluated }}{% endraw %}", "{{ not evaluated }}")]
    [InlineData("line1\r\nline2\n", "line1\nline2")]
    public void Matches_python_jinja2(string template, string expected)
    {
        Render(template).Should().Be(expected);
    }

    [Fact]
    public void Raise_exception_surfaces_the_template_message()
    {
        var act = () => Render("{% if true %}{{ raise_exception('Conversation roles must alternate!') }}{% endif %}");

        act.Should().Throw<ChatTemplateException>()
            .Where(e => e.Message == "Conversation roles must alternate!" && e.RaisedByTemplate && e.Line == 1);
    }

    [Theory]
    [InlineData("{% if true %}unclosed", 1)]
    [InlineData("ok\n{{ 1 + }}", 2)]
    [InlineData("{% for x in y %}{% endif %}", 1)]
    [InlineData("{{ 'unterminated }}", 1)]
    [InlineData("a\n\n{% frobnicate %}", 3)]
    public void Syntax_errors_report_the_line(string template, int line)
    {
        var act = () => ChatTemplate.Parse(template);

        act.Should().Throw<ChatTemplateException>().Where(e => e.Line == line && e.Column != null && !e.RaisedByTemplate);
    }

    [Fact]
    public void Attribute_of_undefined_is_a_render_error_not_silent_output()
    {
        var act = () => Render("{{ missing.attr }}");

        act.Should().Throw<ChatTemplateException>().WithMessage("*'missing' is undefined*");
    }

    [Fact]
    public void Set_inside_a_loop_does_not_leak_but_namespace_does()
    {
        Render("{% set x = 1 %}{% set ns = namespace(y=1) %}{% for i in [5] %}{% set x = i %}{% set ns.y = i %}{% endfor %}{{ x }}-{{ ns.y }}")
            .Should().Be("1-5");
    }
}
