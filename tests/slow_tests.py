"""Which tests are slow (`make check` leaves them out; `make test` and CI run everything). tests/conftest.py
marks them, so the test files need no marks.

Measured one file at a time with `--durations` on the 2-core machine while it was busy (docs/testing.md has the
figures): a test is listed when it took 1.5 s or more (setup + call + teardown), most of them because MediaPipe
runs over real clips, a whole analysis is written, or a process, a pool or a server is started. Add a test
here when it takes seconds; tests/test_house.py checks that every name here is a test that exists.
"""

# Files that are slow as a whole: every test runs the `gympose` command on real clips in a process of its own.
SLOW_FILES = {"test_cli_errors.py", "test_cli_videos.py"}

# Fixtures that analyse real clips, per file ("*": conftest's, everywhere): every test that asks for one is
# slow (a module's fixture costs the first test that asks for it, whichever that is once the others are left out).
SLOW_FIXTURES = {
    "*": {"squat_analysis"},
    "test_batch.py": {"local_run"},
    "test_form_model.py": {"labelled_folder"},
    "test_robustness.py": {"real_suite"},
}

# Real-browser tests outside tests/test_browser*.py (those are marked by their file name), and the fixtures
# that start a browser or a dashboard server.
BROWSER_TESTS = {"test_dataset_page.py": {"test_dataset_page_in_a_real_browser"}}
BROWSER_FIXTURES = {"chromium", "server"}

SLOW_TESTS = {
    "test_batch.py": {
        "test_a_crashing_worker_fails_only_its_item",
        "test_a_malformed_scheduler_address_is_one_line_without_a_hang",
        "test_bad_input_is_one_clear_line",
        "test_dask_local_cluster_gives_the_same_counts",
        "test_kill_9_of_a_batch_leaves_no_worker_behind",
        "test_local_pool_counts_and_bad_items",
        "test_penn_real_subset",
        "test_penn_synthetic_with_frames_matches_export_and_resumes",
    },
    "test_damaged_video.py": {
        "test_an_undamaged_file_has_no_gap_even_with_variable_frame_rate",
        "test_every_reader_goes_past_the_damage_and_names_the_gap",
        "test_ffmpeg_itself_reads_past_the_damage",
        "test_the_analysis_goes_past_the_damage_says_where_and_counts_as_the_whole_file",
    },
    "test_dashboard_access.py": {
        "test_parallel_wrong_attempts_are_not_all_answered_at_once",
        "test_the_page_says_how_long_to_wait_and_the_right_password_works_after_it",
    },
    "test_dashboard_apptest.py": {
        "test_analyze_auto_not_one_of_the_exercises_is_said_as_such",
        "test_analyze_auto_on_a_clip_with_nobody_cannot_tell",
        "test_analyze_auto_recognises_the_exercise_and_counts_with_its_rule",
        "test_analyze_auto_result_with_low_confidence_says_so",
        "test_analyze_bad_input_gives_a_clear_message",
        "test_analyze_upload_shows_counted_reps_chart_video_and_downloads",
        "test_analyze_with_a_locked_history_keeps_the_session",
        "test_auto_on_every_page",
        "test_every_exercise_renders_on_every_page",
        "test_history_lists_sessions_not_yet_saved_and_imports_them_when_it_can",
        "test_history_selection_and_thresholds_angle_survive_pages_and_reloads",
        "test_live_after_stop_and_save_says_saved_and_offers_no_second_save",
        "test_thresholds_rules_upload_is_validated",
        "test_thresholds_slider_changes_correct_percentage_and_saves",
    },
    "test_dashboard_injection.py": {
        "test_recognition_candidates_are_plain_text",
        "test_web_addresses_in_an_uploads_name_are_never_links_in_the_progress_or_the_result",
    },
    "test_dashboard_issue26.py": {
        "test_no_reps_is_one_box_with_a_one_click_analyze_as_the_exercise_it_looks_like",
        "test_one_upload_has_one_name_on_the_result_in_history_and_in_earlier_uploads",
        "test_thresholds_names_units_per_rep_limits_and_a_draft_that_outlasts_pages_and_reloads",
    },
    "test_dashboard_jobs.py": {
        "test_a_queued_job_says_how_many_analyses_are_ahead",
        "test_a_truncated_upload_is_analysed_with_a_note_on_the_page",
        "test_cannot_tell_after_a_reload_still_offers_analyze_as",
        "test_reload_mid_analysis_shows_the_progress_then_the_result",
    },
    "test_dashboard_result_view.py": {
        "test_rep_table_has_rep_time_lifting_range_depth_verdict_reasons_and_not_judged",
    },
    "test_dataset_page.py": {
        "test_dataset_page_in_a_real_browser",
        "test_page_on_the_real_labels",
    },
    "test_disk_and_truncation.py": {
        "test_cli_full_disk_while_encoding_exits_2_with_the_folder",
        "test_cli_prints_the_ends_early_note",
        "test_complete_file_gets_no_ends_early_note",
        "test_truncated_file_gets_an_ends_early_note",
    },
    "test_form.py": {
        "test_form_labelled_clips_every_clip_and_every_judged_rep_agree",
    },
    "test_form_model.py": {
        "test_evaluate_on_a_labels_folder_reports_views_groups_and_coverage",
    },
    "test_frame_export.py": {
        "test_cli_analyze_export_frames",
    },
    "test_history.py": {
        "test_damage_in_the_middle_is_found_and_never_written_into",
    },
    "test_jobs.py": {
        "test_a_job_runs_in_the_background_writes_its_status_and_adds_the_history_row",
        "test_a_job_whose_process_dies_fails_plainly_cleans_up_and_the_next_job_runs",
        "test_a_server_stop_marks_running_and_queued_jobs_stopped_and_cleans_up",
        "test_an_isolated_runner_analyses_in_its_own_lower_priority_process_and_keeps_it",
        "test_background_group_gives_a_process_and_its_children_a_low_weight_group_of_their_own",
        "test_one_job_at_a_time_the_others_wait_in_order",
        "test_the_analysis_process_pose_workers_are_given_the_servers_live_gate",
    },
    "test_live.py": {
        "test_a_restarted_stream_clock_keeps_counting",
        "test_auto_mode_on_a_real_clip_locks_and_counts",
        "test_auto_mode_snapshots_stay_consistent_under_concurrent_override",
        "test_fresh_frames_drop_stale_frames_and_stay_current_when_behind_the_camera",
        "test_real_clip_through_mediapipe_at_640x480",
        "test_reset_and_rule_change_restart_counting",
        "test_snapshots_are_consistent_while_another_thread_streams",
    },
    "test_parallel.py": {
        "test_a_kept_pool_serves_one_video_at_a_time_and_the_other_runs_here",
        "test_a_warm_spare_estimator_gives_a_fresh_ones_poses",
        "test_chunked_run_equals_the_single_process_run",
        "test_chunked_run_writes_the_annotated_video_and_recognises",
        "test_cli_single_process_flag",
        "test_pose_workers_exit_within_a_second_of_their_parents_kill_9_while_busy",
    },
    "test_penn.py": {
        "test_angle_stats_and_values_cached",
        "test_compare_detector_with_mediapipe_finds_nobody",
        "test_scan_counts_gym_classes",
    },
    "test_pose_cache.py": {
        "test_replaying_cached_poses_gives_the_analysis_of_the_video",
    },
    "test_recognition.py": {
        "test_auto_recognition_on_a_sample_of_the_real_clips",
        "test_clip_with_nobody_cannot_tell",
        "test_committed_model_reproduces_committed_test_accuracy",
        "test_cross_check_doubts_a_clean_and_jerk_that_repeats_every_few_seconds",
        "test_dips_are_not_named_as_sure",
        "test_evaluate_reports_recognition_on_a_folder_of_labels",
        "test_recognize_video_first_seconds_only",
        "test_short_gym_clips_are_named_right",
        "test_training_is_reproducible_with_a_seed",
        "test_tree_inference_matches_sklearn",
    },
    "test_remote.py": {
        "test_a_dashboard_job_runs_on_the_configured_scheduler",
        "test_remote_analysis_equals_local_and_reports_progress",
        "test_remote_failure_raises_the_local_exception_type",
    },
    "test_report.py": {
        "test_report_is_self_contained_and_escapes_user_text",
        "test_report_opens_offline_in_chromium_without_a_single_request",
    },
    "test_robustness.py": {
        "test_a_pair_reuses_its_cached_variant",
        "test_cli_refuses_a_missing_folder",
        "test_cli_refuses_bad_input_with_one_line",
        "test_real_counts_survive_low_light_low_resolution_and_a_mirrored_cut",
        "test_write_variant_fps15_halves_the_frames_and_keeps_the_timestamps",
        "test_write_variant_mirrors_after_the_cut",
    },
    "test_server_stop.py": {
        "test_sigterm_mid_analysis_marks_the_job_stopped_removes_the_upload_and_ends_the_workers",
    },
    "test_tuning.py": {
        "test_rejudge_reproduces_the_pipeline_on_a_real_clip",
    },
    "test_video_io.py": {
        "test_frames_for_the_model_are_the_same_frames",
        "test_mpeg4_part2_input",
        "test_rotation_metadata_is_applied",
        "test_variable_frame_rate_uses_timestamps",
    },
}
