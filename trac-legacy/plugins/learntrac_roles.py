# -*- coding: utf-8 -*-
"""LearnTrac's roles in Trac: teachers assign and judge concepts, students work on their own.

A teacher is anyone holding TICKET_ADMIN (the `teachers` group has it; TRAC_ADMIN implies
it). Everyone else signed in is a student, who may view concepts and comment on the
concepts they own - nothing more: no new tickets, no reassigning, no edits to summaries,
descriptions or learning fields (the tutor puts those in other students' prompts), no
workflow actions (shared.ini's actions need TICKET_ADMIN as well). Visitors who have not
signed in see the wiki only: a concept names its student (owner, comments, mastery), and
the load balancer answers the whole internet, so tickets and reports - and through them
the query, the timeline's and the search's ticket entries, milestones' ticket counts and
ticket attachments - are for people signed in.

Trac's default permissions give every signed-in user TICKET_CREATE and TICKET_MODIFY; this
policy runs before Trac's own, so the rule holds whatever the permission table says, in
every environment that inherits shared.ini ([trac] permission_policies names it first).

Also: Trac's query page includes the batch-modify form's markup but loads its script only
for TICKET_BATCH_MODIFY holders, so every other user's /query threw a JavaScript error;
the script (and its setting) is added for them.

Python 2.7 (the production image's Trac 1.4) and 3 (the local runtime's Trac 1.6) alike.
"""

from trac.core import Component, implements
from trac.perm import IPermissionPolicy, PermissionSystem
from trac.web.api import IRequestFilter
from trac.web.chrome import Chrome

# Ticket actions only teachers have.
TEACHER_ONLY = frozenset([
    'TICKET_CREATE', 'TICKET_MODIFY', 'TICKET_CHGPROP', 'TICKET_EDIT_DESCRIPTION',
    'TICKET_EDIT_CC', 'TICKET_BATCH_MODIFY', 'TICKET_EDIT_COMMENT',
])
# Ticket actions a student has on the concepts they own.
OWN_ONLY = frozenset(['TICKET_APPEND'])
# What a visitor who has not signed in never has, whatever the permission table says
# (Trac's defaults give anonymous TICKET_VIEW and REPORT_VIEW). Trac checks TICKET_VIEW on
# each ticket it lists in a query, report, timeline, search or milestone, and on a ticket's
# attachments, so this one rule keeps students' names off every page; a report is denied
# whole because one without a ticket column is not filtered per ticket.
ANONYMOUS_NEVER = frozenset(['TICKET_VIEW', 'REPORT_VIEW', 'REPORT_SQL_VIEW'])


class LearnTracRolesPolicy(Component):
    implements(IPermissionPolicy, IRequestFilter)

    # IPermissionPolicy

    def check_permission(self, action, username, resource, perm):
        if action in ANONYMOUS_NEVER and username in (None, 'anonymous'):
            return False
        if action not in TEACHER_ONLY and action not in OWN_ONLY:
            return None
        if resource is not None and resource.realm != 'ticket':
            return None
        if self._is_teacher(username):
            return None
        if action in TEACHER_ONLY:
            return False
        # TICKET_APPEND: on a concept the student owns; the form's realm-level check
        # (no ticket yet) is left to Trac's own policy.
        if resource is None or resource.id is None:
            return None
        return None if self._owner(resource.id) == username else False

    def _is_teacher(self, username):
        if username in (None, 'anonymous'):
            return False
        perms = PermissionSystem(self.env).get_user_permissions(username)
        return bool(perms.get('TICKET_ADMIN') or perms.get('TRAC_ADMIN'))

    def _owner(self, ticket_id):
        try:
            tid = int(ticket_id)
        except (TypeError, ValueError):
            return None
        for owner, in self.env.db_query("SELECT owner FROM ticket WHERE id=%s", (tid,)):
            return owner
        return None

    # IRequestFilter

    def pre_process_request(self, req, handler):
        return handler

    def post_process_request(self, req, template, data, *args):
        if req.path_info == '/query' and template is not None:
            # The script and its setting (auto_preview_timeout), as Trac adds them for
            # the batch-modify form's owners.
            Chrome(self.env).add_auto_preview(req)
        return (template, data) + args
