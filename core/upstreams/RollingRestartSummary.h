#pragma once

#include "model/Site.h"
#include "upstreams/RemoteRollingRestart.h"

#include <QList>
#include <QString>

namespace corral {

/// Where one backend of a site stands after a rolling restart, read from what the run
/// recorded (its steps), never assumed: a backend the run failed at before draining it was
/// not taken out, and one the run put back is in rotation again.
struct RollingRestartOutcome {
    enum class State {
        Restarted,  ///< restarted and back in rotation
        Failed,     ///< the run stopped at this backend
        NotReached, ///< after the failed one: not touched, serving as before
    };
    QString backend; ///< Backend::key()
    State state = State::NotReached;
    bool inRotation = true; ///< after the run, as far as the recorded steps say
    QString detail;         ///< one sentence for a person: what happened and the state now
};

/// One outcome per backend of `site`, in the site's order.
QList<RollingRestartOutcome> rollingRestartOutcomes(const Site &site,
                                                    const RollingRestartReport &report);

} // namespace corral
