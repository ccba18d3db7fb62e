#include "upstreams/RollingRestartSummary.h"

namespace corral {

namespace {

bool isStep(const RollingStep &step, const QLatin1String &name) {
    // Drains and enables through nginx/Apache configs record apply steps as "drain/..." and
    // "enable/..."; the step itself is "drain" or "enable".
    return step.step == name;
}

} // namespace

QList<RollingRestartOutcome> rollingRestartOutcomes(const Site &site,
                                                    const RollingRestartReport &report) {
    QList<RollingRestartOutcome> outcomes;
    bool pastFailure = false;
    for (const Backend &backend : site.backends) {
        RollingRestartOutcome outcome;
        outcome.backend = backend.key();
        if (report.restarted.contains(outcome.backend)) {
            outcome.state = RollingRestartOutcome::State::Restarted;
            outcome.inRotation = !backend.down;
            outcome.detail = backend.down ? QObject::tr("restarted (marked down in the site: "
                                                        "not in rotation, as before)")
                                          : QObject::tr("restarted, back in rotation");
        } else if (!report.ok() && outcome.backend == report.failedBackend) {
            pastFailure = true;
            outcome.state = RollingRestartOutcome::State::Failed;
            const RollingStep *failedStep = nullptr;
            bool drained = false;
            bool enabledAgain = false;
            for (const RollingStep &step : report.steps) {
                if (step.backend != outcome.backend) continue;
                if (!step.ok && !failedStep) failedStep = &step;
                if (step.ok && isStep(step, QLatin1String("drain"))) drained = true;
                if (step.ok && drained && isStep(step, QLatin1String("enable")))
                    enabledAgain = true;
            }
            outcome.inRotation = !backend.down && (!drained || enabledAgain);
            const QString where =
                failedStep
                    ? QObject::tr("failed at %1: %2").arg(failedStep->step, failedStep->detail)
                    : QObject::tr("failed: %1").arg(report.error);
            const QString now =
                backend.down   ? QObject::tr("marked down in the site")
                : !drained     ? QObject::tr("never taken out of rotation: its balancer config "
                                                 "was not changed and it kept serving")
                : enabledAgain ? QObject::tr("put back into rotation")
                               : QObject::tr("still out of rotation: 'corralctl apply %1' puts "
                                             "it back once it is fixed")
                                     .arg(site.name);
            outcome.detail = where + QStringLiteral("; ") + now;
        } else {
            outcome.state = RollingRestartOutcome::State::NotReached;
            outcome.inRotation = !backend.down;
            outcome.detail = pastFailure || !report.ok()
                                 ? QObject::tr("not restarted (the run stopped before it); "
                                               "serving as before")
                                 : QObject::tr("not restarted");
        }
        outcomes.append(outcome);
    }
    return outcomes;
}

} // namespace corral
