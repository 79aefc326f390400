namespace Envio.Benchmark;

/// <summary>
/// Every figure of every run, by name: the benchmark runs each phase several times (fresh queue and tables each time)
/// and reports the median with the range, because one run on a shared 2-core machine is not a measurement.
/// </summary>
internal sealed class Runs
{
    private readonly Dictionary<string, List<double>> _values = [];
    private readonly Dictionary<string, List<CpuCounters.Phase>> _phases = [];

    public void Record(string name, double value)
    {
        Console.WriteLine($"  {name}: {value:#,0.#}");
        if (!_values.TryGetValue(name, out var values))
        {
            _values[name] = values = [];
        }
        values.Add(value);
    }

    public void Record(CpuCounters.Phase phase)
    {
        if (!_phases.TryGetValue(phase.Name, out var phases))
        {
            _phases[phase.Name] = phases = [];
        }
        phases.Add(phase);
    }

    public bool Has(string name) => _values.ContainsKey(name);

    public Figure this[string name] => Figure.Of(_values[name]);

    /// <summary>The run of a phase whose CPU per message is the median one: its row stands for the phase.</summary>
    public IEnumerable<CpuCounters.Phase> MedianPhases =>
        _phases.Values.Select(runs => runs.OrderBy(p => p.MicrosecondsPerMessage).ElementAt((runs.Count - 1) / 2));

    /// <summary>The CPU microseconds per message a phase cost, across the machine.</summary>
    public Figure CostOf(string phase) => Figure.Of(_phases[phase].Select(p => p.MicrosecondsPerMessage).ToList());
}

/// <summary>The median of a figure's runs, and the lowest and highest.</summary>
internal readonly record struct Figure(double Median, double Min, double Max, int Count)
{
    public static Figure Of(IReadOnlyCollection<double> values)
    {
        var sorted = values.Order().ToArray();
        var middle = sorted.Length / 2;
        var median = sorted.Length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
        return new Figure(median, sorted[0], sorted[^1], sorted.Length);
    }
}
